//! A TCP proxy on loopback that forwards, delays or drops connections:
//! the network faults of the fault-injection tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Forward,
    /// Accept, then close at once: the peer sees a reset / EOF.
    Drop,
    /// Hold each new connection this long before forwarding.
    Delay(Duration),
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    pub async fn start(target: SocketAddr, mode: Mode) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(Mutex::new(mode));
        let shared = mode.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    return;
                };
                let mode = *shared.lock().unwrap();
                tokio::spawn(async move {
                    match mode {
                        Mode::Drop => drop(inbound),
                        Mode::Forward | Mode::Delay(_) => {
                            if let Mode::Delay(delay) = mode {
                                tokio::time::sleep(delay).await;
                            }
                            if let Ok(mut outbound) = TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            }
                        }
                    }
                });
            }
        });
        Proxy { addr, mode, task }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}
