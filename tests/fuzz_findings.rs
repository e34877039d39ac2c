//! Findings of the fuzz targets (fuzz/), each kept as a regression test of what must
//! hold. See docs/TESTING.md, "Findings".
use pipeconnect::policy::Settings;
use pipeconnect::session::event::EVENT_MESSAGE_ACCEPTED;
use pipeconnect::session::{Intent, Session};
use pipeconnect::{Cache, CacheConfig, PeerKey, TlsState};
use std::sync::Arc;

// Finding S1 (`session` target): replies in one buffer are matched to commands the
// session released during that same feed, before the caller could take (so send) them.
// A server that sends "250" lines ahead of time (or bytes injected into the stream) makes
// the session report a message accepted whose BDAT LAST was never sent: the MTA would
// drop a message the server never received.
#[test]
fn a_reply_in_the_same_buffer_cannot_answer_a_command_not_yet_taken() {
    let cache = Arc::new(Cache::in_memory(CacheConfig::default()));
    let key = PeerKey::parse("192.0.2.1", 25, TlsState::Cleartext).unwrap();
    let intent = Intent::new("client.example.net", 1, 100);
    let mut s = Session::begin(cache, key, intent, Settings::early()).unwrap();
    assert!(s.next_commands().is_empty(), "nothing cached: classic");
    s.feed(b"220 mx ESMTP\r\n").unwrap();
    let ehlo = s.next_commands();
    assert_eq!(ehlo.len(), 1);
    // The EHLO reply releases MAIL, RCPT and BDAT LAST; the three 250s arrive in the same
    // read, before the caller has taken (or sent) any of them.
    let r = s.feed(
        b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 PIPECONNECT\r\n\
          250 ok\r\n250 ok\r\n250 queued\r\n",
    );
    let mut accepted = false;
    while let Some(ev) = s.next_event() {
        accepted |= ev.has(EVENT_MESSAGE_ACCEPTED);
    }
    assert!(
        !accepted,
        "message reported accepted before BDAT LAST was handed out (feed: {r:?})"
    );
    assert!(
        r.is_err(),
        "replies to commands never sent must be an error"
    );
}
