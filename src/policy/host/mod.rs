//! Functions the host adds to regorus's builtins: OPA builtins regorus does
//! not implement, with OPA's names and results (held to OPA by the
//! conformance suite). They are extensions of the interpreter; the VM
//! compiler takes no host function, so an entry rule that can reach one
//! runs on the interpreter (`policy::set`).
//!
//! A call whose arguments OPA would fail on is undefined: OPA's default
//! for a builtin error, which `opa eval` and AlertChain use.
//!
//! Where a regorus builtin answers otherwise than OPA, the host's takes its
//! place on both engines ([`REPLACEMENTS`]): in the VM's compiled program,
//! and as the interpreter's extension of the same name. Those keep regorus's
//! contract (an error, which the VM makes undefined) and keep the rule on
//! the VM.

mod arrays;
mod crypto;
mod dates;
mod encoding;
mod glob;
mod jwt;
mod layout;
mod marshal;
mod net;
mod numbers;
mod operand;
mod order;
mod panics;
mod paths;
mod re2;
mod replacer;
mod semver;
mod sprintf;
mod strings;
mod subset;

use regorus::rvm::program::Program;
use regorus::unstable::{Expr, Ref, Span};
use regorus::Value;

use super::guard::{too_large, MAX_ELEMENTS};

/// A host function: its value, None where OPA's builtin fails.
type HostFunction = fn(&[Value]) -> Option<Value>;

/// How many elements a call would build or compare, for those that can
/// grow without bound: over `guard::MAX_ELEMENTS`, it is a limit error
/// (a `policy_error` naming the rule), as for the guarded builtins.
type Size = fn(&[Value]) -> u64;

/// Every function, with its number of arguments.
const FUNCTIONS: &[(&str, u8, HostFunction)] = &[
    ("array.flatten", 1, arrays::flatten),
    ("crypto.md5", 1, crypto::md5),
    ("crypto.sha1", 1, crypto::sha1),
    ("crypto.sha256", 1, crypto::sha256),
    ("crypto.hmac.md5", 2, crypto::hmac_md5),
    ("crypto.hmac.sha1", 2, crypto::hmac_sha1),
    ("crypto.hmac.sha256", 2, crypto::hmac_sha256),
    ("crypto.hmac.sha512", 2, crypto::hmac_sha512),
    ("crypto.hmac.equal", 2, crypto::hmac_equal),
    ("io.jwt.decode", 1, jwt::decode),
    ("io.jwt.verify_hs256", 2, jwt::verify_hs256),
    ("io.jwt.verify_hs384", 2, jwt::verify_hs384),
    ("io.jwt.verify_hs512", 2, jwt::verify_hs512),
    ("net.cidr_intersects", 2, net::cidr_intersects),
    ("net.cidr_contains_matches", 2, net::cidr_contains_matches),
    ("net.cidr_merge", 1, net::cidr_merge),
];

/// A replacement of a regorus builtin: its value, or an error as regorus's
/// builtins give (which the VM makes undefined).
type Replacement = fn(&[Value]) -> anyhow::Result<Value>;

type BuiltinFn = fn(&Span, &[Ref<Expr>], &[Value], bool) -> anyhow::Result<Value>;

/// A host function's value, or an error naming the builtin.
fn defined(name: &str, value: Option<Value>) -> anyhow::Result<Value> {
    value.ok_or_else(|| anyhow::anyhow!("{name}: an argument it cannot take"))
}

macro_rules! replacements {
    ($($builtin:ident => $name:literal, $arity:literal, $replacement:expr;)*) => {
        $(
            fn $builtin(_: &Span, _: &[Ref<Expr>], args: &[Value], _: bool) -> anyhow::Result<Value> {
                let replacement: Replacement = $replacement;
                replacement(args)
            }
        )*
        /// Each with its arity, its function, and that function as the VM
        /// calls a builtin.
        const REPLACEMENTS: &[(&str, u8, Replacement, BuiltinFn)] = &[$(($name, $arity, $replacement, $builtin)),*];
    };
}

// regorus builtins the host replaces, each where it answers otherwise than
// OPA: `net.cidr_contains`, `net.cidr_is_valid` and `net.cidr_expand` read
// CIDRs as Go (`net`); `glob.*` follow OPA's delimiters and syntax
// (`glob`); `regex.*` read patterns as RE2 (`re2`); `upper`, `lower`,
// `indexof`, `indexof_n`, `substring`, `format_int` and `count` map case,
// count and write as Go (`strings`); `base64.*`, `base64url.decode` and `urlquery.*`
// decode and escape as Go (`encoding`); `semver.*` parse as OPA (`semver`);
// `json.marshal*` write text as Go (`marshal`); `time.parse_rfc3339_ns`,
// `time.parse_ns`, `time.add_date` and `time.format` read, normalise and
// write dates as Go (`dates`, `layout`); `sort`, `max` and `min` rank
// objects before sets (`order`); `json.filter`, `json.remove` and
// `graph.reachable_paths` follow OPA's paths and walk (`paths`); the others
// panicked on some arguments (`panics`). A replaced builtin takes no guard
// (`policy::guard`): the replacement bounds itself.
replacements! {
    cidr_contains => "net.cidr_contains", 2, |args| defined("net.cidr_contains", net::cidr_contains(args));
    strings_count => "strings.count", 2, |args| defined("strings.count", panics::strings_count(args));
    parse_duration_ns => "time.parse_duration_ns", 1, |args| defined("time.parse_duration_ns", panics::parse_duration_ns(args));
    template_match => "regex.template_match", 4, panics::template_match;
    glob_match => "glob.match", 3, glob::glob_match;
    glob_quote_meta => "glob.quote_meta", 1, glob::quote_meta;
    sprintf_builtin => "sprintf", 2, sprintf::sprintf;
    object_subset => "object.subset", 2, subset::object_subset;
    replace_n => "strings.replace_n", 2, replacer::replace_n;
    regex_match => "regex.match", 2, re2::regex_match;
    regex_is_valid => "regex.is_valid", 1, re2::is_valid;
    regex_find_n => "regex.find_n", 3, re2::find_n;
    regex_find_all_string_submatch_n => "regex.find_all_string_submatch_n", 3, re2::find_all_string_submatch_n;
    regex_split => "regex.split", 2, re2::split;
    regex_replace => "regex.replace", 3, re2::replace;
    count => "count", 1, strings::count;
    upper => "upper", 1, strings::upper;
    lower => "lower", 1, strings::lower;
    indexof => "indexof", 2, strings::indexof;
    indexof_n => "indexof_n", 2, strings::indexof_n;
    substring => "substring", 3, strings::substring;
    format_int => "format_int", 2, strings::format_int;
    json_filter => "json.filter", 2, paths::json_filter;
    json_remove => "json.remove", 2, paths::json_remove;
    reachable_paths => "graph.reachable_paths", 2, paths::reachable_paths;
    base64_decode => "base64.decode", 1, encoding::base64_decode;
    base64_is_valid => "base64.is_valid", 1, encoding::base64_is_valid;
    base64url_decode => "base64url.decode", 1, encoding::base64url_decode;
    urlquery_encode => "urlquery.encode", 1, encoding::urlquery_encode;
    urlquery_decode => "urlquery.decode", 1, encoding::urlquery_decode;
    urlquery_encode_object => "urlquery.encode_object", 1, encoding::urlquery_encode_object;
    urlquery_decode_object => "urlquery.decode_object", 1, encoding::urlquery_decode_object;
    cidr_is_valid => "net.cidr_is_valid", 1, net::cidr_is_valid;
    cidr_expand => "net.cidr_expand", 1, net::cidr_expand;
    semver_is_valid => "semver.is_valid", 1, semver::is_valid;
    semver_compare => "semver.compare", 2, semver::compare;
    json_marshal => "json.marshal", 1, marshal::json_marshal;
    json_marshal_with_options => "json.marshal_with_options", 2, marshal::json_marshal_with_options;
    parse_rfc3339_ns => "time.parse_rfc3339_ns", 1, dates::parse_rfc3339_ns;
    add_date => "time.add_date", 4, dates::add_date;
    time_format => "time.format", 1, dates::format;
    parse_ns => "time.parse_ns", 2, dates::parse_ns;
    to_number => "to_number", 1, numbers::to_number;
    units_parse => "units.parse", 1, numbers::units_parse;
    units_parse_bytes => "units.parse_bytes", 1, numbers::units_parse_bytes;
    sort => "sort", 1, order::sort;
    max => "max", 1, order::max;
    min => "min", 1, order::min;
}

/// `program` with the builtins the host replaces pointing to the host's.
pub(super) fn replace_in(mut program: Program) -> Program {
    for (index, info) in program.builtin_info_table.iter().enumerate() {
        let replacement = REPLACEMENTS.iter().find(|(name, ..)| *name == info.name);
        if let (Some(&(.., builtin)), Some(slot)) = (replacement, program.resolved_builtins.get_mut(index)) {
            slot.0 = builtin;
        }
    }
    program
}

/// The names of the builtins the host replaces.
#[cfg(test)]
pub(super) fn replaced() -> impl Iterator<Item = &'static str> {
    REPLACEMENTS.iter().map(|(name, ..)| *name)
}

/// The functions bounded by their size.
const SIZED: &[(&str, Size)] = &[("net.cidr_contains_matches", net::pairs)];

/// The function's value, or a limit error when its size is over the limit.
fn call(name: &str, function: HostFunction, args: &[Value]) -> anyhow::Result<Value> {
    if let Some((_, size)) = SIZED.iter().find(|(sized, _)| *sized == name) {
        let elements = size(args);
        if elements > MAX_ELEMENTS {
            return Err(too_large(name, elements));
        }
    }
    Ok(function(args).unwrap_or(Value::Undefined))
}

/// The names of the host's functions.
pub(super) fn names() -> Vec<&'static str> {
    FUNCTIONS.iter().map(|(name, _, _)| *name).collect()
}

/// The host's functions with their number of arguments.
pub(super) fn arities() -> Vec<(&'static str, u8)> {
    FUNCTIONS.iter().map(|(name, arity, _)| (*name, *arity)).collect()
}

/// Adds the functions to an interpreter.
pub(super) fn add_to(engine: &mut regorus::Engine) {
    for &(name, arity, function) in FUNCTIONS {
        let added = engine.add_extension(
            name.to_string(),
            arity,
            Box::new(move |args: Vec<Value>| call(name, function, &args)),
        );
        if let Err(err) = added {
            tracing::warn!(builtin = name, error = %err, "could not add the host function to the interpreter");
        }
    }
    for &(name, arity, replacement, _) in REPLACEMENTS {
        let added = engine.add_extension(
            name.to_string(),
            arity,
            Box::new(move |args: Vec<Value>| replacement(&args)),
        );
        if let Err(err) = added {
            tracing::warn!(builtin = name, error = %err, "could not replace the builtin on the interpreter");
        }
    }
}
