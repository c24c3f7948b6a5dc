//! A TCP proxy on loopback that forwards, delays or drops connections:
//! the network faults of the fault-injection tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// An HTTP proxy on loopback that forwards one request at a time. moto
/// applies a DynamoDB transaction without a lock (it copies the table,
/// applies the writes, and puts the copy back if any write is cancelled), so
/// concurrent transactions can overwrite each other there; DynamoDB itself
/// serializes writes to an item. Through this proxy moto sees requests in
/// some order, one after another, as DynamoDB would apply them.
pub struct OneAtATime {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OneAtATime {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OneAtATime {
    pub async fn start(target: SocketAddr) -> OneAtATime {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let turn = turn.clone();
                tokio::spawn(async move {
                    let _ = forward_one(inbound, target, &turn).await;
                });
            }
        });
        OneAtATime { addr, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Reads one request (headers and a `Content-Length` body), sends it upstream
/// with `Connection: close` while holding `turn`, and relays the response to
/// its end; the client then reconnects for its next request.
async fn forward_one(mut inbound: TcpStream, target: SocketAddr, turn: &tokio::sync::Mutex<()>) -> std::io::Result<()> {
    let mut request = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let n = inbound.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&request[..head_end]).to_string();
    let length: usize = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = inbound.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let mut rewritten: Vec<u8> = head
        .trim_end()
        .lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .flat_map(|line| [line.as_bytes(), b"\r\n"].concat())
        .collect();
    rewritten.extend_from_slice(b"Connection: close\r\n\r\n");
    rewritten.extend_from_slice(&request[head_end..]);

    let _turn = turn.lock().await;
    let mut outbound = TcpStream::connect(target).await?;
    outbound.write_all(&rewritten).await?;
    let mut response = Vec::new();
    outbound.read_to_end(&mut response).await?;
    inbound.write_all(&response).await?;
    inbound.shutdown().await
}
