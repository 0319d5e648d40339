//! Test helper: opens a TCP listener on 127.0.0.1, connects to it, prints
//! `listen=<port> client=<port>` on one line and holds both ends open for
//! the given number of seconds (default 30). Used by `ci/wine/test.sh` to
//! check `procnet snapshot` end to end on Windows (under Wine).

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

fn main() -> std::io::Result<()> {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let server = listener.local_addr()?;
    let client = TcpStream::connect(server)?;
    let (accepted, _) = listener.accept()?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "listen={} client={}",
        server.port(),
        client.local_addr()?.port()
    )?;
    out.flush()?;
    drop(out);
    std::thread::sleep(Duration::from_secs(secs));
    drop((client, accepted, listener));
    Ok(())
}
