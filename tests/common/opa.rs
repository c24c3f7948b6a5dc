//! OPA v1.20 in process: `libopabridge.so` (OPA behind a C interface, from
//! the PyPI wheel `opa-golib-python-bindings`, the library `scripts/bench`
//! uses), loaded with dlopen. `scripts/test` installs it and names it in
//! `OPA_BRIDGE_LIB`.

use std::ffi::{c_char, c_int, c_void, CStr, CString};

use serde_json::Value;

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
    fn dlerror() -> *const c_char;
}

const RTLD_NOW: c_int = 2;

type New = unsafe extern "C" fn() -> u64;
type Destroy = unsafe extern "C" fn(u64);
type AddPolicy = unsafe extern "C" fn(u64, *const c_char, *const c_char) -> *mut c_char;
type EvalDocument = unsafe extern "C" fn(u64, *const c_char, *const c_char, c_int, c_int) -> *mut c_char;
type Free = unsafe extern "C" fn(*mut c_void);

/// The functions of the bridge library.
pub struct Bridge {
    new: New,
    destroy: Destroy,
    add_policy: AddPolicy,
    eval_document: EvalDocument,
    free: Free,
}

/// What OPA made of a document.
#[derive(Debug, Clone, PartialEq)]
pub enum Evaluated {
    Value(Value),
    Undefined,
    Error(String),
}

impl Bridge {
    /// Loads the library named by `OPA_BRIDGE_LIB`.
    pub fn load() -> Bridge {
        let path = std::env::var("OPA_BRIDGE_LIB")
            .expect("OPA_BRIDGE_LIB is not set: run the suite with scripts/test, which installs OPA's library");
        let path = CString::new(path).unwrap();
        // SAFETY: dlopen/dlsym/dlerror are called as documented; every symbol
        // is cast to the signature the library exports (see its ctypes
        // bindings in the same wheel).
        unsafe {
            let handle = dlopen(path.as_ptr(), RTLD_NOW);
            if handle.is_null() {
                panic!("dlopen: {}", CStr::from_ptr(dlerror()).to_string_lossy());
            }
            let symbol = |name: &str| {
                let name = CString::new(name).unwrap();
                let found = dlsym(handle, name.as_ptr());
                assert!(!found.is_null(), "{name:?} not in the OPA bridge library");
                found
            };
            Bridge {
                new: std::mem::transmute::<*mut c_void, New>(symbol("OpaNew")),
                destroy: std::mem::transmute::<*mut c_void, Destroy>(symbol("OpaDestroy")),
                add_policy: std::mem::transmute::<*mut c_void, AddPolicy>(symbol("OpaAddPolicy")),
                eval_document: std::mem::transmute::<*mut c_void, EvalDocument>(symbol("OpaEvalDocument")),
                free: std::mem::transmute::<*mut c_void, Free>(symbol("OpaFreeString")),
            }
        }
    }

    /// A new OPA engine holding `modules` (name, text); the error OPA gives
    /// when one does not compile.
    pub fn engine(&self, modules: &[(&str, &str)]) -> Result<Engine<'_>, String> {
        // SAFETY: a handle from OpaNew, released by Drop.
        let engine = Engine {
            bridge: self,
            handle: unsafe { (self.new)() },
        };
        for (name, text) in modules {
            let name = CString::new(*name).unwrap();
            let text = CString::new(*text).unwrap();
            // SAFETY: valid C strings; the envelope is freed by `envelope`.
            let envelope = self.envelope(unsafe { (self.add_policy)(engine.handle, name.as_ptr(), text.as_ptr()) });
            if let Some(error) = error_of(&envelope) {
                return Err(error);
            }
        }
        Ok(engine)
    }

    fn envelope(&self, raw: *mut c_char) -> Value {
        assert!(!raw.is_null(), "the OPA bridge returned NULL");
        // SAFETY: a NUL-terminated string the library allocated; freed with its allocator.
        let text = unsafe { CStr::from_ptr(raw).to_string_lossy().into_owned() };
        unsafe { (self.free)(raw.cast()) };
        serde_json::from_str(&text).expect("the OPA bridge answers JSON")
    }
}

pub struct Engine<'a> {
    bridge: &'a Bridge,
    handle: u64,
}

impl Engine<'_> {
    /// `data.<path>` for `input`.
    pub fn eval(&self, path: &str, input: &Value) -> Evaluated {
        let path = CString::new(path.trim_start_matches("data.")).unwrap();
        let input = CString::new(input.to_string()).unwrap();
        // SAFETY: valid C strings; the envelope is freed by `envelope`.
        let envelope = self
            .bridge
            .envelope(unsafe { (self.bridge.eval_document)(self.handle, path.as_ptr(), input.as_ptr(), 0, 0) });
        if let Some(error) = error_of(&envelope) {
            return Evaluated::Error(error);
        }
        match envelope["result"][0]["expressions"][0].get("value") {
            Some(value) => Evaluated::Value(value.clone()),
            None => Evaluated::Undefined,
        }
    }
}

impl Drop for Engine<'_> {
    fn drop(&mut self) {
        // SAFETY: the handle came from OpaNew and is released once.
        unsafe { (self.bridge.destroy)(self.handle) }
    }
}

fn error_of(envelope: &Value) -> Option<String> {
    let error = envelope.get("error").filter(|e| !e.is_null())?;
    Some(format!(
        "{}: {}",
        error["code"].as_str().unwrap_or("error"),
        error["message"].as_str().unwrap_or_default()
    ))
}
