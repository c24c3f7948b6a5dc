//! Entry rules compiled for regorus's register VM.

use std::num::NonZeroU64;
use std::sync::Arc;
use std::time::Duration;

use regorus::languages::rego::compiler::{Compiler, CompilerError};
use regorus::rvm::program::Program;
use regorus::rvm::vm::RegoVM;
use regorus::MemoryBudgetConfig;

use super::engine::{first_line, timer};
use super::guard::guard_program;

/// One entry rule's VM program, with the VMs idle between evaluations. A
/// VM clears its state (registers, rule and builtin caches) when an
/// execution starts, so reuse carries nothing over; a new VM per evaluation
/// cost ~1.5 µs of a ~10 µs evaluation.
pub(super) struct VmRule {
    program: Arc<Program>,
    pub(super) idle: std::sync::Mutex<Vec<RegoVM>>,
}

impl VmRule {
    pub(super) fn new(program: Arc<Program>) -> VmRule {
        VmRule {
            program,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    /// Runs the program on `input`, stopped at `limit` of time and at
    /// `memory` bytes allocated beyond what the process held when it started.
    pub(super) fn execute(
        &self,
        input: regorus::Value,
        limit: Duration,
        memory: NonZeroU64,
    ) -> Result<regorus::Value, String> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let mut vm = idle.unwrap_or_else(|| {
            let mut vm = RegoVM::new();
            vm.load_program(Arc::clone(&self.program));
            // The timer bounds the evaluation; the VM's default instruction
            // cap (25,000) would stop large alerts.
            vm.set_max_instructions(usize::MAX);
            vm
        });
        vm.set_execution_timer_config(Some(timer(limit)));
        vm.set_memory_budget_config(Some(MemoryBudgetConfig { limit: memory }));
        vm.set_input(input);
        let result = vm.execute().map(without_undefined).map_err(|err| err.to_string());
        // Only a VM that finished is kept, without the input it held.
        if result.is_ok() {
            vm.set_input(regorus::Value::Undefined);
            if let Ok(mut idle) = self.idle.lock() {
                idle.push(vm);
            }
        }
        result
    }
}

/// `value` without the undefined elements the VM leaves in a collection
/// whose comprehension hit a builtin error (`[to_number(p) | some p in
/// ["80", "http"]]` is `[80, <undefined>]` on the VM): OPA's default skips
/// such an element, and an undefined one must not reach an action's
/// arguments as text. Values without any (nearly all) are returned as
/// they are, after one scan.
fn without_undefined(value: regorus::Value) -> regorus::Value {
    if has_undefined(&value) {
        strip_undefined(&value)
    } else {
        value
    }
}

fn has_undefined(value: &regorus::Value) -> bool {
    use regorus::Value;
    match value {
        Value::Undefined => true,
        Value::Array(items) => items.iter().any(has_undefined),
        Value::Set(items) => items.iter().any(has_undefined),
        Value::Object(fields) => fields
            .iter()
            .any(|(key, value)| has_undefined(key) || has_undefined(value)),
        _ => false,
    }
}

fn strip_undefined(value: &regorus::Value) -> regorus::Value {
    use regorus::Value;
    let kept = |item: &&Value| !matches!(item, Value::Undefined);
    match value {
        Value::Array(items) => Value::from(items.iter().filter(kept).map(strip_undefined).collect::<Vec<_>>()),
        Value::Set(items) => Value::from(
            items
                .iter()
                .filter(kept)
                .map(strip_undefined)
                .collect::<std::collections::BTreeSet<_>>(),
        ),
        Value::Object(fields) => Value::from(
            fields
                .iter()
                .filter(|(key, value)| kept(key) && kept(value))
                .map(|(key, value)| (strip_undefined(key), strip_undefined(value)))
                .collect::<std::collections::BTreeMap<_, _>>(),
        ),
        other => other.clone(),
    }
}

impl Clone for VmRule {
    fn clone(&self) -> VmRule {
        VmRule::new(Arc::clone(&self.program))
    }
}

/// Compiles one entry rule of the prepared `engine` into a VM program; the
/// error is why the VM compiler does not take the rule (the interpreter
/// runs it then). Every call was resolved before (`analysis`), so a
/// function the VM compiler does not know is a host function.
pub(super) fn compile_program(engine: &mut regorus::Engine, rule: &str) -> Result<Arc<Program>, String> {
    let compiled = engine
        .compile_with_entrypoint(&Arc::<str>::from(rule))
        .map_err(|err| err.to_string())?;
    let program = Compiler::compile_from_policy(&compiled, &[rule]).map_err(|err| match &err.error {
        CompilerError::UnknownFunction { name } => {
            format!("{name} is a host function ({})", first_line(&err.to_string()))
        }
        _ => first_line(&err.to_string()),
    })?;
    Ok(Arc::new(lean_rule_infos(super::host::replace_in(guard_program(
        Arc::unwrap_or_clone(program),
    )))))
}

/// `program` with its rules' metadata cut to what execution reads. The VM
/// clones a rule's `RuleInfo` at every call of the rule, cached or not:
/// its name, parameter names and per-definition vectors were allocations
/// on each call. An empty `else_bodies` / `destructuring_blocks` reads as
/// "no else body" / "no destructuring" for every definition, and the VM
/// reads neither names nor parameter names.
fn lean_rule_infos(mut program: Program) -> Program {
    for info in &mut program.rule_infos {
        info.name = String::new();
        if let Some(function) = &mut info.function_info {
            function.param_names = Vec::new();
        }
        if info.else_bodies.iter().flatten().all(|is_else| !is_else) {
            info.else_bodies = Vec::new();
        }
        if info.destructuring_blocks.iter().all(Option::is_none) {
            info.destructuring_blocks = Vec::new();
        }
    }
    program
}
