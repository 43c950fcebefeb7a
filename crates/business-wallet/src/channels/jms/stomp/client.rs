//! A small STOMP 1.2 client: just what a producer needs (CONNECT, SEND with a receipt,
//! DISCONNECT), over one plain TCP connection. Frames it reads are bounded by
//! [`MAX_FRAME_LEN`], so a misbehaving broker cannot make it allocate without limit.

use std::fmt::Write as _;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest frame the client reads: command, headers and body together (the end-of-line bytes
/// before a command, heart-beats, are not counted). A broker answers a producer with receipts
/// and short errors, so this is far beyond any real answer; it only bounds what a broker that
/// misbehaves can make the client allocate.
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

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
    /// The broker answered a SEND with an ERROR frame (and closed the connection).
    #[error("the STOMP broker refused: {message}{}", if detail.is_empty() { String::new() } else { format!(" ({detail})") })]
    Refused {
        /// What the refusal is about, as far as its text tells.
        reason: RefusalReason,
        /// The frame's `message` header.
        message: String,
        /// The start of the frame's body.
        detail: String,
    },
    /// The broker answered the CONNECT with an ERROR frame: the login was refused.
    #[error("unexpected answer from the STOMP broker: login refused: {message} {detail}")]
    LoginRefused {
        /// The frame's `message` header.
        message: String,
        /// The start of the frame's body.
        detail: String,
    },
    /// The broker answered with a frame other than the one expected (and not an ERROR).
    #[error("unexpected answer from the STOMP broker: {command} frame")]
    UnexpectedFrame {
        /// The frame's command.
        command: String,
    },
    /// A header line without a colon.
    #[error("unexpected answer from the STOMP broker: malformed header line `{0}`")]
    MalformedHeader(String),
    /// A frame (its `content-length`, or the bytes up to its end) is larger than the client
    /// reads.
    #[error("the STOMP broker sent a frame larger than {limit} bytes")]
    FrameTooLarge {
        /// The bound that was passed, in bytes.
        limit: usize,
    },
    /// The broker URL in the settings does not parse.
    #[error("unexpected answer from the STOMP broker: integration.channels.jms.url: {0}")]
    InvalidUrl(#[source] url::ParseError),
}

/// What an ERROR frame refusing a SEND is about.
///
/// STOMP 1.2 gives an ERROR frame no error code: only a free-text `message` header and a body.
/// [`RefusalReason::of`] is therefore the one place that reads the broker's text (the wording
/// of ActiveMQ Classic and Artemis); everything after it matches on this enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// The login may not send to the destination.
    Permission,
    /// The destination name is not acceptable to the broker.
    Destination,
    /// The message is larger than the broker accepts.
    TooLarge,
    /// Anything else: the broker shutting down, a full store, ...
    Other,
}

impl RefusalReason {
    /// The reason an ERROR frame's `message` header and body excerpt describe.
    pub fn of(message: &str, detail: &str) -> RefusalReason {
        const PERMISSION: &[&str] = &[
            "not authorized",
            "unauthorized",
            "permission",
            "security",
            "not allowed",
        ];
        const DESTINATION: &[&str] = &["invalid destination", "illegal destination"];
        const TOO_LARGE: &[&str] = &["too large", "exceeds"];
        let text = format!("{message} {detail}").to_ascii_lowercase();
        let says = |phrases: &[&str]| phrases.iter().any(|phrase| text.contains(phrase));
        if says(PERMISSION) {
            RefusalReason::Permission
        } else if says(DESTINATION) {
            RefusalReason::Destination
        } else if says(TOO_LARGE) {
            RefusalReason::TooLarge
        } else {
            RefusalReason::Other
        }
    }
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
            "ERROR" => {
                let (message, detail) = error_text(&frame);
                Err(StompError::LoginRefused { message, detail })
            }
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

    /// Reads the next frame, at most [`MAX_FRAME_LEN`] bytes of it.
    async fn read(&mut self) -> Result<Frame, StompError> {
        read_frame(&mut self.stream, MAX_FRAME_LEN).await
    }
}

/// Reads the next frame from `reader`, skipping heart-beat newlines, and refuses one whose
/// command, headers and body together are longer than `limit` bytes: a declared
/// `content-length` beyond it before anything is allocated for the body, and a line or a
/// NUL-terminated body as soon as the bytes read reach it.
///
/// # Errors
/// The stream fails or ends, a header line has no colon, or the frame is too large
/// ([`StompError::FrameTooLarge`]).
pub async fn read_frame<R>(reader: &mut R, limit: usize) -> Result<Frame, StompError>
where
    R: AsyncBufRead + Unpin,
{
    let mut budget = limit;
    let mut line = Vec::new();
    let command = loop {
        line.clear();
        // Heart-beat newlines between frames do not count against the frame.
        let mut probe = budget;
        if read_bounded(reader, b'\n', &mut line, &mut probe, limit).await? == 0 {
            return Err(closed());
        }
        let text = trim_eol(&line);
        if !text.is_empty() {
            budget = probe;
            break String::from_utf8_lossy(text).into_owned();
        }
    };
    let mut headers = Vec::new();
    loop {
        line.clear();
        if read_bounded(reader, b'\n', &mut line, &mut budget, limit).await? == 0 {
            return Err(closed());
        }
        let text = trim_eol(&line);
        if text.is_empty() {
            break;
        }
        let text = String::from_utf8_lossy(text);
        let (name, value) = text
            .split_once(':')
            .ok_or_else(|| StompError::MalformedHeader(text.to_string()))?;
        headers.push((unescape(name), unescape(value)));
    }
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let mut body = Vec::new();
    match length {
        Some(length) => {
            // The body and its NUL must fit in what is left.
            if length >= budget {
                return Err(StompError::FrameTooLarge { limit });
            }
            body.resize(length, 0);
            reader.read_exact(&mut body).await?;
            let mut nul = [0u8; 1];
            reader.read_exact(&mut nul).await?;
        }
        None => {
            if read_bounded(reader, 0, &mut body, &mut budget, limit).await? == 0 {
                return Err(closed());
            }
            body.pop();
        }
    }
    Ok(Frame { command, headers, body })
}

/// Appends the bytes up to and including `delimiter` (or up to the end of the stream) to
/// `out`, reading at most `budget` bytes, and takes what it read off the budget. Returns the
/// number of bytes read.
///
/// # Errors
/// The stream fails, or the budget runs out before the delimiter ([`StompError::FrameTooLarge`]
/// with `limit`, the whole frame's bound).
async fn read_bounded<R>(
    reader: &mut R,
    delimiter: u8,
    out: &mut Vec<u8>,
    budget: &mut usize,
    limit: usize,
) -> Result<usize, StompError>
where
    R: AsyncBufRead + Unpin,
{
    let allowed = u64::try_from(*budget).unwrap_or(u64::MAX);
    let start = out.len();
    let read = (&mut *reader).take(allowed).read_until(delimiter, out).await?;
    let complete = out[start..].last() == Some(&delimiter);
    if !complete && read == *budget {
        return Err(StompError::FrameTooLarge { limit });
    }
    *budget -= read;
    Ok(read)
}

fn closed() -> StompError {
    StompError::Io(std::io::Error::new(
        std::io::ErrorKind::UnexpectedEof,
        "the broker closed the connection",
    ))
}

/// The error for a frame that is not the expected answer: a refusal when it is an ERROR frame.
fn unexpected(frame: Frame) -> StompError {
    if frame.command == "ERROR" {
        let (message, detail) = error_text(&frame);
        StompError::Refused {
            reason: RefusalReason::of(&message, &detail),
            message,
            detail,
        }
    } else {
        StompError::UnexpectedFrame { command: frame.command }
    }
}

/// An ERROR frame's `message` header and the trimmed start of its body.
fn error_text(frame: &Frame) -> (String, String) {
    let detail: String = String::from_utf8_lossy(&frame.body).chars().take(500).collect();
    (
        frame.header("message").unwrap_or("no message").to_string(),
        detail.trim().to_string(),
    )
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
            Err(StompError::Refused {
                reason,
                message,
                detail,
            }) => {
                assert_eq!(reason, RefusalReason::Permission);
                assert_eq!(message, "not allowed");
                assert_eq!(detail, "nope");
            }
            other => panic!("{other:?}"),
        }
        broker.await.unwrap();
    }

    /// A reader over the far end of an in-memory pipe that holds `bytes` and stays open, so
    /// that a reader wanting more than was sent waits instead of seeing the end.
    async fn pipe(bytes: &[u8]) -> (BufReader<tokio::io::DuplexStream>, tokio::io::DuplexStream) {
        let (near, mut far) = tokio::io::duplex(64 * 1024);
        far.write_all(bytes).await.unwrap();
        (BufReader::new(near), far)
    }

    /// Reads one frame, failing the test instead of hanging when the reader waits for more.
    async fn read_within(reader: &mut BufReader<tokio::io::DuplexStream>, limit: usize) -> Result<Frame, StompError> {
        tokio::time::timeout(std::time::Duration::from_secs(5), read_frame(reader, limit))
            .await
            .expect("the reader decided without waiting for more bytes")
    }

    #[tokio::test]
    async fn a_content_length_beyond_the_limit_is_refused_before_the_body_arrives() {
        let header = format!("RECEIPT\nreceipt-id:bw-1\ncontent-length:{}\n\n", MAX_FRAME_LEN + 1);
        let (mut reader, _far) = pipe(header.as_bytes()).await;
        match read_within(&mut reader, MAX_FRAME_LEN).await {
            Err(StompError::FrameTooLarge { limit }) => assert_eq!(limit, MAX_FRAME_LEN),
            other => panic!("{other:?}"),
        }
        // A content length that is not a number is read as none: the body then ends at its
        // NUL, and that is bounded too.
        let mut bytes = b"ERROR\ncontent-length:lots\n\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 200));
        bytes.push(0);
        let (mut reader, _far) = pipe(&bytes).await;
        assert!(matches!(
            read_within(&mut reader, 128).await,
            Err(StompError::FrameTooLarge { limit: 128 })
        ));
    }

    #[tokio::test]
    async fn a_frame_without_content_length_may_not_run_past_the_limit() {
        let mut bytes = b"MESSAGE\ndestination:/queue/a\n\n".to_vec();
        bytes.extend(std::iter::repeat_n(b'x', 1000));
        let (mut reader, _far) = pipe(&bytes).await;
        assert!(matches!(
            read_within(&mut reader, 256).await,
            Err(StompError::FrameTooLarge { limit: 256 })
        ));
    }

    #[tokio::test]
    async fn header_lines_count_against_the_limit() {
        let line = format!("ERROR\nmessage:{}", "y".repeat(1000));
        let (mut reader, _far) = pipe(line.as_bytes()).await;
        assert!(matches!(
            read_within(&mut reader, 256).await,
            Err(StompError::FrameTooLarge { limit: 256 })
        ));
        let (mut reader, _far) = pipe(&vec![b'C'; 1000]).await;
        assert!(matches!(
            read_within(&mut reader, 256).await,
            Err(StompError::FrameTooLarge { limit: 256 })
        ));
    }

    #[tokio::test]
    async fn a_frame_of_exactly_the_limit_is_read_and_heart_beats_are_not_counted() {
        // Command, headers, the empty line, 4 bytes of body and the NUL: 53 bytes in all.
        let frame = b"RECEIPT\nreceipt-id:bw-1234567\ncontent-length:4\n\nabcd\0";
        assert_eq!(frame.len(), 53);
        let mut bytes = b"\n\r\n\n".repeat(20);
        bytes.extend_from_slice(frame);
        bytes.extend_from_slice(b"RECEIPT\nreceipt-id:x\n\nno length\0");
        let (mut reader, _far) = pipe(&bytes).await;
        let first = read_within(&mut reader, 53).await.unwrap();
        assert_eq!(first.command, "RECEIPT");
        assert_eq!(first.header("receipt-id"), Some("bw-1234567"));
        assert_eq!(first.body, b"abcd");
        let second = read_within(&mut reader, 53).await.unwrap();
        assert_eq!(second.header("receipt-id"), Some("x"));
        assert_eq!(second.body, b"no length");

        let (mut reader, _far) = pipe(frame).await;
        assert!(matches!(
            read_within(&mut reader, 52).await,
            Err(StompError::FrameTooLarge { limit: 52 })
        ));
    }
}
