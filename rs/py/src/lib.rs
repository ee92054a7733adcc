//! `clutchcall._native`: the native part of the ClutchCall Python SDK (`sdk/python`, module
//! `clutchcall.streams`), built with maturin and PyO3 (abi3, Python ≥ 3.9).
//!
//! Owns: headless capture of a live broadcast. [`capture`] resolves a signed playback URL
//! (`…/watch/lv_…?token=…` → `GET /v1/playback/{id}`), subscribes over MoQT (raw QUIC, the
//! relay's certificate pinned) with the Rust client (`rs/client`: one protocol implementation
//! for Rust and Python) to the catalog and to the chosen video rendition and audio track, and
//! [`cmaf`] combines their single-track CMAF into one playable fragmented MP4: one init segment
//! with every track, then media chunks ordered by decode time.
//!
//! Must not: implement MoQT or QUIC (that is `client`), know the control plane beyond the
//! playback-info endpoint (the REST client is pure Python in `clutchcall.streams`), or run
//! Python code anywhere but its one delivery thread per viewer.
//!
//! Threads. One process-wide tokio runtime (threads `clutchcall-engine`) runs every capture.
//! Each [`Viewer`] has one delivery thread (`clutchcall-callbacks`) that takes the GIL to call
//! `on_chunk(is_init, chunk)` and finally `on_close(reason, detail)` — in order, never
//! concurrently, `on_close` exactly once. The GIL is never held while waiting on the network
//! or on the engine. An exception raised by a callback goes to `sys.unraisablehook` and the
//! capture goes on. A slow callback slows only its own capture (bounded channels; the relay
//! drops the groups of a viewer that falls too far behind).
//!
//! Nothing here panics on network input; `unsafe` appears only inside PyO3's macro expansions.

pub mod capture;
pub mod cmaf;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::ThreadId;
use std::time::Duration;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use tokio::sync::mpsc;

use crate::capture::{Command, Options, Output, Stats};

/// Chunks buffered between the engine and the delivery thread of one viewer.
const OUTPUT_BUFFER: usize = 512;
/// Most outputs delivered under one GIL acquisition.
const BATCH: usize = 64;

fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(1, 4));
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("clutchcall-engine")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the capture runtime: {e}")))
}

/// One piece of the output file, as handed to `on_chunk`.
#[pyclass(module = "clutchcall._native", name = "Chunk", frozen)]
struct PyChunk {
    data: Py<PyBytes>,
    #[pyo3(get)]
    is_init: bool,
    #[pyo3(get)]
    track: Option<&'static str>,
    #[pyo3(get)]
    group: u64,
    #[pyo3(get)]
    object: u64,
    #[pyo3(get)]
    decode_time: f64,
}

#[pymethods]
impl PyChunk {
    /// The bytes to append to the file.
    #[getter]
    fn data(&self, py: Python<'_>) -> Py<PyBytes> {
        self.data.clone_ref(py)
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        self.data.bind(py).as_bytes().len()
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        if self.is_init {
            format!("Chunk(init, {} bytes)", self.__len__(py))
        } else {
            format!(
                "Chunk({}, group={}, object={}, decode_time={:.3}, {} bytes)",
                self.track.unwrap_or("?"),
                self.group,
                self.object,
                self.decode_time,
                self.__len__(py)
            )
        }
    }
}

/// Set once the delivery thread has called `on_close` (or given up).
#[derive(Default)]
struct Done {
    closed: Mutex<Option<(String, String)>>,
    cv: Condvar,
    thread: OnceLock<ThreadId>,
}

impl Done {
    fn set(&self, reason: &str, detail: &str) {
        let mut g = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some((reason.to_owned(), detail.to_owned()));
        }
        self.cv.notify_all();
    }

    fn get(&self) -> Option<(String, String)> {
        self.closed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn wait(&self, timeout: Duration) -> bool {
        let g = self.closed.lock().unwrap_or_else(|e| e.into_inner());
        let (g, _) = self
            .cv
            .wait_timeout_while(g, timeout, |c| c.is_none())
            .unwrap_or_else(|e| e.into_inner());
        g.is_some()
    }
}

/// A running capture (see `clutchcall.streams.BroadcastViewer`). Dropping the handle does not
/// stop the capture: it runs until it ends or [`Viewer::close`].
#[pyclass(module = "clutchcall._native", name = "Viewer")]
struct Viewer {
    commands: mpsc::UnboundedSender<Command>,
    done: Arc<Done>,
    stats: Arc<Stats>,
}

#[pymethods]
impl Viewer {
    /// Starts capturing `url` in the background and returns at once.
    #[staticmethod]
    #[pyo3(signature = (url, on_chunk, on_close, *, rendition=None, retries=5, timeout=10.0))]
    fn open(
        url: String,
        on_chunk: Py<PyAny>,
        on_close: Py<PyAny>,
        rendition: Option<String>,
        retries: u32,
        timeout: f64,
    ) -> PyResult<Self> {
        capture::info_url(&url).map_err(PyValueError::new_err)?;
        if !(timeout.is_finite() && timeout > 0.0) {
            return Err(PyValueError::new_err(
                "timeout must be a positive number of seconds",
            ));
        }
        let rt = runtime()?;
        let options = Options {
            rendition,
            retries,
            timeout: Duration::from_secs_f64(timeout),
            ..Options::default()
        };
        let (out_tx, out_rx) = mpsc::channel(OUTPUT_BUFFER);
        let stats = Arc::new(Stats::default());
        let done = Arc::new(Done::default());
        let commands = {
            let _guard = rt.enter();
            capture::start(url, options, out_tx, stats.clone())
        };
        let thread_done = done.clone();
        std::thread::Builder::new()
            .name("clutchcall-callbacks".into())
            .spawn(move || deliver(out_rx, on_chunk, on_close, thread_done))
            .map_err(|e| {
                PyRuntimeError::new_err(format!("cannot start the callback thread: {e}"))
            })?;
        Ok(Self {
            commands,
            done,
            stats,
        })
    }

    /// Stops the capture; `on_close("closed", …)` follows (unless the capture already closed).
    /// Waits up to `timeout` seconds for `on_close` to have run, except when called from a
    /// callback. Returns whether it has.
    #[pyo3(signature = (timeout=10.0))]
    fn close(&self, py: Python<'_>, timeout: f64) -> bool {
        let _ = self.commands.send(Command::Close);
        if self.done.thread.get() == Some(&std::thread::current().id()) {
            return self.done.get().is_some();
        }
        let timeout = Duration::from_secs_f64(if timeout.is_finite() {
            timeout.max(0.0)
        } else {
            0.0
        });
        let done = self.done.clone();
        py.detach(move || done.wait(timeout))
    }

    /// Continues the capture with a new signed URL (a freshly minted ticket for the same
    /// broadcast): a second session starts, and the first one closes once the second covers
    /// it, so no group is missed or written twice. Returns at once.
    fn renew(&self, url: String) -> PyResult<()> {
        capture::info_url(&url).map_err(PyValueError::new_err)?;
        self.commands
            .send(Command::Renew(url))
            .map_err(|_| PyRuntimeError::new_err("the capture is closed"))
    }

    /// Whether `on_close` has run.
    #[getter]
    fn closed(&self) -> bool {
        self.done.get().is_some()
    }

    /// `(reason, detail)` once closed.
    #[getter]
    fn close_reason(&self) -> Option<(String, String)> {
        self.done.get()
    }

    /// Counters: chunks, bytes, duplicates (dropped during renewals/reconnects), reconnects,
    /// renewals, last_group (largest video group written, or -1).
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        let s = &self.stats;
        d.set_item("chunks", s.chunks.load(Ordering::Relaxed))?;
        d.set_item("bytes", s.bytes.load(Ordering::Relaxed))?;
        d.set_item("duplicates", s.duplicates.load(Ordering::Relaxed))?;
        d.set_item("reconnects", s.reconnects.load(Ordering::Relaxed))?;
        d.set_item("renewals", s.renewals.load(Ordering::Relaxed))?;
        d.set_item(
            "last_group",
            s.last_group.load(Ordering::Relaxed) as i64 - 1,
        )?;
        Ok(d)
    }
}

/// The delivery thread of one viewer.
fn deliver(
    mut rx: mpsc::Receiver<Output>,
    on_chunk: Py<PyAny>,
    on_close: Py<PyAny>,
    done: Arc<Done>,
) {
    let _ = done.thread.set(std::thread::current().id());
    let mut closed: Option<(String, String)> = None;
    while closed.is_none() {
        // Wait without the GIL.
        let Some(first) = rx.blocking_recv() else {
            break;
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        Python::attach(|py| {
            for o in batch {
                match o {
                    Output::Chunk(c) => {
                        let chunk = PyChunk {
                            data: PyBytes::new(py, &c.data).unbind(),
                            is_init: c.is_init,
                            track: (!c.track.is_empty()).then_some(c.track),
                            group: c.group,
                            object: c.object,
                            decode_time: c.decode_time,
                        };
                        let result = Py::new(py, chunk)
                            .and_then(|chunk| on_chunk.call1(py, (c.is_init, chunk)));
                        if let Err(e) = result {
                            e.write_unraisable(py, Some(on_chunk.bind(py)));
                        }
                    }
                    Output::Warning(msg) => warn(py, &msg),
                    Output::Close { reason, detail } => {
                        closed = Some((reason.to_owned(), detail));
                        break;
                    }
                }
            }
        });
    }
    let (reason, detail) = closed.unwrap_or_else(|| {
        (
            capture::reason::NETWORK.to_owned(),
            "the capture engine stopped unexpectedly".to_owned(),
        )
    });
    Python::attach(|py| {
        if let Err(e) = on_close.call1(py, (reason.as_str(), detail.as_str())) {
            e.write_unraisable(py, Some(on_close.bind(py)));
        }
        // Release the callbacks (and what they hold, e.g. an open file) with the GIL held.
        drop(on_chunk);
        drop(on_close);
    });
    done.set(&reason, &detail);
}

fn warn(py: Python<'_>, msg: &str) {
    let logged = py
        .import("logging")
        .and_then(|l| l.call_method1("getLogger", ("clutchcall.streams",)))
        .and_then(|l| l.call_method1("warning", ("%s", msg)));
    if let Err(e) = logged {
        e.write_unraisable(py, None);
    }
}

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Viewer>()?;
    m.add_class::<PyChunk>()?;
    m.add("REASON_AUTH_FAILED", capture::reason::AUTH_FAILED)?;
    m.add("REASON_ENDED", capture::reason::ENDED)?;
    m.add("REASON_CLOSED", capture::reason::CLOSED)?;
    m.add("REASON_NETWORK", capture::reason::NETWORK)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
