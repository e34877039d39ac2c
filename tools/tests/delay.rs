//! `pipeconnect delay`: each direction is late by the one-way delay, the connect costs a round
//! trip, and a half-close travels like data.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{connect, spawn_listening, with_timeout, Procs, IO_TIMEOUT};

const ONE_WAY_MS: u64 = 30;
const ONE_WAY: Duration = Duration::from_millis(ONE_WAY_MS);

/// A loopback server that runs `handle` on each connection in its own thread.
fn upstream<F>(handle: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + Copy + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
            stream.set_nodelay(true).unwrap();
            thread::spawn(move || handle(stream));
        }
    });
    addr
}

fn echo(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 || stream.write_all(&buf[..n]).is_err() {
            break;
        }
    }
}

fn start_proxy(procs: &Procs, upstream: SocketAddr) -> SocketAddr {
    spawn_listening(
        procs,
        &[
            "delay",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.to_string(),
            "--one-way-ms",
            &ONE_WAY_MS.to_string(),
        ],
    )
}

#[test]
fn each_round_trip_takes_two_one_way_delays() {
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(echo));
        let mut client = connect(proxy);
        for i in 0..5u8 {
            let start = Instant::now();
            client.write_all(&[i]).unwrap();
            let mut byte = [0u8; 1];
            client.read_exact(&mut byte).unwrap();
            let rtt = start.elapsed();
            assert_eq!(byte[0], i);
            assert!(rtt >= 2 * ONE_WAY, "round trip {i}: {rtt:?}");
            assert!(rtt < Duration::from_millis(200), "round trip {i}: {rtt:?}");
        }
    });
}

#[test]
fn delays_do_not_accumulate_over_a_burst() {
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(echo));
        let mut client = connect(proxy);
        // Wait until the upstream connection is surely open, then send 10 pieces back to back.
        client.write_all(b"x").unwrap();
        client.read_exact(&mut [0u8; 1]).unwrap();
        let start = Instant::now();
        for _ in 0..10 {
            client.write_all(b"y").unwrap();
            thread::sleep(Duration::from_millis(5));
        }
        let mut got = [0u8; 10];
        client.read_exact(&mut got).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(&got, b"yyyyyyyyyy");
        // The last piece left ~45 ms after the start and needs one round trip more.
        assert!(elapsed < Duration::from_millis(250), "{elapsed:?}");
    });
}

#[test]
fn connect_and_first_byte_take_two_one_way_delays() {
    fn banner(mut stream: TcpStream) {
        let _ = stream.write_all(b"220 upstream\r\n");
        let _ = stream.read(&mut [0u8; 16]);
    }
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(banner));
        let start = Instant::now();
        let mut client = connect(proxy);
        let mut byte = [0u8; 1];
        client.read_exact(&mut byte).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(&byte, b"2");
        assert!(elapsed >= 2 * ONE_WAY, "{elapsed:?}");
        assert!(elapsed < Duration::from_millis(300), "{elapsed:?}");
    });
}

#[test]
fn early_data_reaches_upstream_one_delay_after_it_was_sent() {
    use std::sync::Mutex;
    // When the upstream received the first byte (the test and upstream share a clock).
    static ARRIVAL: Mutex<Option<Instant>> = Mutex::new(None);
    fn record_arrival(mut stream: TcpStream) {
        let mut byte = [0u8; 1];
        if stream.read_exact(&mut byte).is_ok() {
            *ARRIVAL.lock().unwrap() = Some(Instant::now());
            let _ = stream.write_all(b"ok");
        }
    }
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(record_arrival));
        let mut client = connect(proxy);
        // Sent right after the connect, before upstream has even been connected.
        let sent = Instant::now();
        client.write_all(b"E").unwrap();
        let mut reply = [0u8; 2];
        client.read_exact(&mut reply).unwrap();
        let answered = sent.elapsed();
        let arrival = ARRIVAL.lock().unwrap().expect("upstream got the byte");
        let one_way = arrival - sent;
        assert!(one_way >= ONE_WAY, "{one_way:?}");
        assert!(one_way < Duration::from_millis(200), "{one_way:?}");
        assert!(answered >= 2 * ONE_WAY, "{answered:?}");
    });
}

#[test]
fn half_close_is_propagated_after_the_data() {
    fn count_then_close(mut stream: TcpStream) {
        let mut all = Vec::new();
        if stream.read_to_end(&mut all).is_ok() {
            let _ = stream.write_all(format!("got {}", all.len()).as_bytes());
        }
    }
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(count_then_close));
        let mut client = connect(proxy);
        client.write_all(&vec![b'z'; 100_000]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "got 100000");
    });
}

#[test]
fn log_records_the_commands_that_beat_the_greeting_and_the_time() {
    /// Waits for the client's early lines, then greets and answers once, then closes.
    fn greet_late(mut stream: TcpStream) {
        thread::sleep(Duration::from_millis(50));
        let _ = stream.write_all(b"220 hi\r\n250 ok\r\n");
        let mut buf = [0u8; 256];
        let _ = stream.read(&mut buf);
    }
    with_timeout(|procs| {
        let log = std::env::temp_dir().join(format!("delay-log-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&log);
        let proxy = spawn_listening(
            procs,
            &[
                "delay",
                "--upstream",
                &upstream(greet_late).to_string(),
                "--one-way-ms",
                &ONE_WAY_MS.to_string(),
                "--log",
                log.to_str().unwrap(),
            ],
        );
        let mut client = connect(proxy);
        client
            .write_all(b"EHLO c\r\nMAIL FROM:<a@b>\r\nDATA\r\n")
            .unwrap();
        let mut reply = [0u8; 16];
        client.read_exact(&mut reply).unwrap();
        client.write_all(b"QUIT\r\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        let deadline = Instant::now() + Duration::from_secs(5);
        let text = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains('\n') || Instant::now() > deadline {
                break text;
            }
            thread::sleep(Duration::from_millis(20));
        };
        let _ = std::fs::remove_file(&log);
        assert!(text.starts_with("conn=1 "), "{text}");
        assert!(text.contains(" before_banner=EHLO,MAIL,DATA\n"), "{text}");
        let field = |name: &str| -> f64 {
            let start = text.find(&format!(" {name}=")).unwrap() + name.len() + 2;
            text[start..].split(' ').next().unwrap().parse().unwrap()
        };
        // The connect costs one delay to upstream, the greeting one more back.
        assert!(field("banner_ms") >= ONE_WAY_MS as f64, "{text}");
        assert!(field("elapsed_ms") >= 2.0 * ONE_WAY_MS as f64, "{text}");
    });
}

#[test]
fn a_half_close_crosses_in_one_delay_while_the_reply_still_flows() {
    // Like Exim 4.96 after QUIT: the server answers only once the client's FIN is in. The
    // FIN must cross as soon as it is due, not wait for the other direction to end.
    fn reply_after_the_fin(mut stream: TcpStream) {
        let mut first = [0u8; 1];
        if stream.read_exact(&mut first).is_err() || stream.write_all(&first).is_err() {
            return;
        }
        let mut rest = Vec::new();
        if stream.read_to_end(&mut rest).is_ok() {
            let _ = stream.write_all(format!("221 after {} bytes", rest.len()).as_bytes());
        }
    }
    with_timeout(|procs| {
        let proxy = start_proxy(procs, upstream(reply_after_the_fin));
        let mut client = connect(proxy);
        // One exchange first, so that the upstream connection is surely open.
        client.write_all(b"x").unwrap();
        client.read_exact(&mut [0u8; 1]).unwrap();
        let start = Instant::now();
        client.write_all(b"QUIT\r\n").unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).unwrap();
        let elapsed = start.elapsed();
        assert_eq!(reply, "221 after 6 bytes");
        assert!(elapsed >= 2 * ONE_WAY, "{elapsed:?}");
        assert!(
            elapsed < 2 * ONE_WAY + Duration::from_millis(100),
            "{elapsed:?}"
        );
    });
}

#[test]
fn a_half_close_from_upstream_leaves_the_client_direction_open() {
    use std::sync::mpsc;
    use std::sync::Mutex;
    // What the upstream read after its own half-close.
    static RECEIVED: Mutex<Option<mpsc::Sender<usize>>> = Mutex::new(None);
    fn close_first_then_count(mut stream: TcpStream) {
        if stream.write_all(b"bye").is_err() || stream.shutdown(Shutdown::Write).is_err() {
            return;
        }
        let mut all = Vec::new();
        let got = stream.read_to_end(&mut all).map(|_| all.len()).unwrap_or(0);
        if let Some(tx) = RECEIVED.lock().unwrap().as_ref() {
            let _ = tx.send(got);
        }
    }
    let (tx, rx) = mpsc::channel();
    *RECEIVED.lock().unwrap() = Some(tx);
    with_timeout(move |procs| {
        let proxy = start_proxy(procs, upstream(close_first_then_count));
        let mut client = connect(proxy);
        // The upstream's FIN reaches the client while the client has not closed anything.
        let mut greeting = String::new();
        client.read_to_string(&mut greeting).unwrap();
        assert_eq!(greeting, "bye");
        // The client's direction still carries data, and then its own half-close.
        client.write_all(&vec![b'q'; 50_000]).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        let got = rx.recv_timeout(IO_TIMEOUT).expect("upstream counted");
        assert_eq!(got, 50_000);
    });
}
