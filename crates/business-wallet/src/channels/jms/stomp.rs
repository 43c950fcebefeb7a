//! A small STOMP 1.2 client: just what a producer needs (CONNECT, SEND with a receipt,
//! DISCONNECT), over one plain TCP connection.

use std::fmt::Write as _;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One frame: command, headers in order (the first of a repeated name counts), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// `CONNECTED`, `RECEIPT`, `ERROR`, ...
    pub command: String,
    /// Decoded headers.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Frame {
    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// What went wrong talking to the broker.
#[derive(Debug, thiserror::Error)]
pub enum StompError {
    /// The connection failed or closed.
    #[error("connection to the STOMP broker failed: {0}")]
    Io(#[from] std::io::Error),
    /// The broker answered with an ERROR frame (and closed the connection).
    #[error("the STOMP broker refused: {message}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Refused {
        /// The frame's `message` header.
        message: String,
        /// The start of the frame's body.
        detail: String,
    },
    /// The broker said something this client does not expect.
    #[error("unexpected answer from the STOMP broker: {0}")]
    Protocol(String),
}

/// An open, logged-in STOMP session.
#[derive(Debug)]
pub struct Connection {
    stream: BufReader<TcpStream>,
    next_receipt: u64,
}

impl Connection {
    /// Connects to `host:port` and logs in.
    ///
    /// # Errors
    /// The connection fails, or the broker refuses the login.
    pub async fn connect(
        host: &str,
        port: u16,
        login: Option<&str>,
        passcode: Option<&str>,
    ) -> Result<Connection, StompError> {
        let stream = TcpStream::connect((host, port)).await?;
        stream.set_nodelay(true)?;
        let mut connection = Connection {
            stream: BufReader::new(stream),
            next_receipt: 1,
        };
        let mut headers = vec![
            ("accept-version", "1.2".to_string()),
            ("host", host.to_string()),
            ("heart-beat", "0,0".to_string()),
        ];
        if let Some(login) = login {
            headers.push(("login", login.to_string()));
        }
        if let Some(passcode) = passcode {
            headers.push(("passcode", passcode.to_string()));
        }
        connection.write(&encode("CONNECT", &headers, b"")).await?;
        let frame = connection.read().await?;
        match frame.command.as_str() {
            "CONNECTED" => Ok(connection),
            _ => Err(unexpected(frame)),
        }
    }

    /// Sends one message and waits for the broker's receipt, which it gives once the message
    /// is stored (persistent) or handed on. Returns the receipt id.
    ///
    /// # Errors
    /// The connection fails, or the broker answers with an ERROR frame.
    pub async fn send(
        &mut self,
        destination: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<String, StompError> {
        let receipt = format!("bw-{}", self.next_receipt);
        self.next_receipt += 1;
        let mut all = vec![("destination", destination.to_string())];
        all.extend(headers.iter().cloned());
        all.push(("content-length", body.len().to_string()));
        all.push(("receipt", receipt.clone()));
        self.write(&encode("SEND", &all, body)).await?;
        let frame = self.read().await?;
        match (frame.command.as_str(), frame.header("receipt-id")) {
            ("RECEIPT", Some(id)) if id == receipt => Ok(receipt),
            _ => Err(unexpected(frame)),
        }
    }

    /// Ends the session politely.
    pub async fn disconnect(mut self) {
        let _ = self.write(&encode("DISCONNECT", &[], b"")).await;
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), StompError> {
        self.stream.get_mut().write_all(bytes).await?;
        self.stream.get_mut().flush().await?;
        Ok(())
    }

    /// Reads the next frame, skipping heart-beat newlines.
    async fn read(&mut self) -> Result<Frame, StompError> {
        let mut line = Vec::new();
        let command = loop {
            line.clear();
            if self.stream.read_until(b'\n', &mut line).await? == 0 {
                return Err(closed());
            }
            let text = trim_eol(&line);
            if !text.is_empty() {
                break String::from_utf8_lossy(text).into_owned();
            }
        };
        let mut headers = Vec::new();
        loop {
            line.clear();
            if self.stream.read_until(b'\n', &mut line).await? == 0 {
                return Err(closed());
            }
            let text = trim_eol(&line);
            if text.is_empty() {
                break;
            }
            let text = String::from_utf8_lossy(text);
            let (name, value) = text
                .split_once(':')
                .ok_or_else(|| StompError::Protocol(format!("malformed header line `{text}`")))?;
            headers.push((unescape(name), unescape(value)));
        }
        let length = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok());
        let mut body = Vec::new();
        match length {
            Some(length) => {
                body.resize(length, 0);
                self.stream.read_exact(&mut body).await?;
                let mut nul = [0u8; 1];
                self.stream.read_exact(&mut nul).await?;
            }
            None => {
                if self.stream.read_until(0, &mut body).await? == 0 {
                    return Err(closed());
                }
                body.pop();
            }
        }
        Ok(Frame { command, headers, body })
    }
}

fn closed() -> StompError {
    StompError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the broker closed the connection",
    ))
}

fn unexpected(frame: Frame) -> StompError {
    if frame.command == "ERROR" {
        let detail: String = String::from_utf8_lossy(&frame.body).chars().take(500).collect();
        StompError::Refused {
            message: frame.header("message").unwrap_or("no message").to_string(),
            detail: detail.trim().to_string(),
        }
    } else {
        StompError::Protocol(format!("{} frame", frame.command))
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Renders a frame. Header values are escaped as STOMP 1.2 asks, except in CONNECT.
pub fn encode(command: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut text = String::new();
    text.push_str(command);
    text.push('\n');
    for (name, value) in headers {
        if command == "CONNECT" {
            let _ = writeln!(text, "{name}:{value}");
        } else {
            let _ = writeln!(text, "{}:{}", escape(name), escape(value));
        }
    }
    text.push('\n');
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes.push(0);
    bytes
}

/// STOMP 1.2 header escaping.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            ':' => out.push_str("\\c"),
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape`]; unknown escapes are kept as they are.
pub fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('c') => out.push(':'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_rendered_with_escaped_headers_and_a_nul() {
        let bytes = encode(
            "SEND",
            &[("destination", "/queue/a".into()), ("ce_type", "x:y\nz".into())],
            b"{}",
        );
        assert_eq!(bytes, b"SEND\ndestination:/queue/a\nce_type:x\\cy\\nz\n\n{}\0".to_vec());
        assert_eq!(unescape(&escape("a\\b:c\r\nd")), "a\\b:c\r\nd");
    }

    #[tokio::test]
    async fn a_send_waits_for_its_receipt_and_an_error_frame_is_a_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let broker = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let n = socket.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"CONNECT\naccept-version:1.2\n"));
            socket.write_all(b"CONNECTED\nversion:1.2\n\n\0\n").await.unwrap();
            let n = socket.read(&mut buf).await.unwrap();
            let text = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(text.contains("receipt:bw-1\n"), "{text}");
            socket.write_all(b"\nRECEIPT\nreceipt-id:bw-1\n\n\0").await.unwrap();
            let _ = socket.read(&mut buf).await.unwrap();
            socket
                .write_all(b"ERROR\nmessage:not allowed\ncontent-length:4\n\nnope\0")
                .await
                .unwrap();
        });
        let mut connection = Connection::connect("127.0.0.1", port, Some("u"), Some("p"))
            .await
            .unwrap();
        let receipt = connection.send("/queue/a", &[], b"hello").await.unwrap();
        assert_eq!(receipt, "bw-1");
        match connection.send("/queue/a", &[], b"again").await {
            Err(StompError::Refused { message, detail }) => {
                assert_eq!(message, "not allowed");
                assert_eq!(detail, "nope");
            }
            other => panic!("{other:?}"),
        }
        broker.await.unwrap();
    }
}
