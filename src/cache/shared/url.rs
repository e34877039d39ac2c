//! The shared tier's address: `redis://[[user]:password@]host[:port][/db]`,
//! `rediss://…[/db][?ca=/path/ca.pem&sni=NAME]` (TLS) or
//! `unix://[[user]:password@]/path[?db=N]`. Pure parsing; the host name is resolved by
//! the caller, once, when the tier is attached.

/// Where and how to reach Redis, as a URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host (without brackets) and port, for TCP.
    pub tcp: Option<(String, u16)>,
    /// Socket path, for a Unix domain socket.
    pub unix: Option<String>,
    /// ACL user (None: the default user).
    pub user: Option<String>,
    /// Password (None: no AUTH).
    pub password: Option<String>,
    /// Database number.
    pub db: u32,
    /// TLS (`rediss://`).
    pub tls: bool,
    /// A PEM file of the CA certificates to trust (`?ca=`), else the system's roots.
    pub ca_file: Option<String>,
    /// The name the server's certificate must carry (`?sni=`), else the host.
    pub sni: Option<String>,
}

/// Why a URL was refused.
pub fn parse(url: &str) -> Result<Target, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "the URL has no scheme (redis:// or unix://)".to_string())?;
    match scheme {
        "redis" | "unix" | "rediss" => {}
        _ => {
            return Err(format!(
                "unknown scheme {scheme}:// (redis://, rediss:// or unix://)"
            ))
        }
    }
    let (auth, rest) = match rest.rsplit_once('@') {
        Some((a, r)) => (Some(a), r),
        None => (None, rest),
    };
    let (user, password) = match auth {
        None => (None, None),
        Some(a) => {
            let (u, p) = a.split_once(':').unwrap_or(("", a));
            let u = (!u.is_empty()).then(|| decode_percent(u)).transpose()?;
            (u, Some(decode_percent(p)?))
        }
    };
    let mut t = Target {
        tcp: None,
        unix: None,
        user,
        password,
        db: 0,
        tls: scheme == "rediss",
        ca_file: None,
        sni: None,
    };
    if scheme == "unix" {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        if !path.starts_with('/') {
            return Err("a unix:// URL needs an absolute path".into());
        }
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            match kv.split_once('=') {
                Some(("db", n)) => t.db = n.parse().map_err(|_| "bad database number")?,
                _ => return Err(format!("unknown URL parameter {kv}")),
            }
        }
        t.unix = Some(path.to_string());
        return Ok(t);
    }
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    for kv in query.split('&').filter(|s| !s.is_empty()) {
        match kv.split_once('=') {
            Some(("ca", p)) if t.tls && p.starts_with('/') => t.ca_file = Some(decode_percent(p)?),
            Some(("sni", n)) if t.tls && !n.is_empty() => t.sni = Some(decode_percent(n)?),
            _ => return Err(format!("unknown or misplaced URL parameter {kv}")),
        }
    }
    let (hostport, db) = match rest.split_once('/') {
        Some((h, d)) => (h, d),
        None => (rest, ""),
    };
    if !db.is_empty() {
        t.db = db.parse().map_err(|_| "bad database number")?;
    }
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, after) = r.split_once(']').ok_or("unclosed [ in the host")?;
        let port = match after.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| "bad port")?,
            None if after.is_empty() => 6379,
            None => return Err("bad text after the host".into()),
        };
        (h.to_string(), port)
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().map_err(|_| "bad port")?),
            None => (hostport.to_string(), 6379),
        }
    };
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    t.tcp = Some((host, port));
    Ok(t)
}

fn decode_percent(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let h = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("bad %-escape in the URL")?;
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the URL's user or password is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms() {
        let t = parse("redis://127.0.0.1:7000/2").unwrap();
        assert_eq!(t.tcp, Some(("127.0.0.1".into(), 7000)));
        assert_eq!((t.db, t.user, t.password), (2, None, None));
        let t = parse("redis://fleet:p%40ss@[::1]").unwrap();
        assert_eq!(t.tcp, Some(("::1".into(), 6379)));
        assert_eq!(t.user.as_deref(), Some("fleet"));
        assert_eq!(t.password.as_deref(), Some("p@ss"));
        let t = parse("redis://:secret@host").unwrap();
        assert_eq!((t.user, t.password.as_deref()), (None, Some("secret")));
        let t = parse("rediss://pc:pw@redis.example:6380/1?ca=/etc/ca.pem&sni=r.example").unwrap();
        assert!(t.tls);
        assert_eq!(t.tcp, Some(("redis.example".into(), 6380)));
        assert_eq!(t.ca_file.as_deref(), Some("/etc/ca.pem"));
        assert_eq!((t.sni.as_deref(), t.db), (Some("r.example"), 1));
        assert!(!parse("redis://h").unwrap().tls);
        let t = parse("unix:///run/redis.sock?db=3").unwrap();
        assert_eq!((t.unix.as_deref(), t.db), (Some("/run/redis.sock"), 3));
    }

    #[test]
    fn refuses_bad_urls() {
        for u in [
            "127.0.0.1:6379",
            "http://x",
            "redis://h?ca=/x",
            "rediss://h?ca=relative",
            "rediss://h?x=1",
            "redis://",
            "redis://h:port",
            "redis://h/x",
            "unix://rel/path",
            "unix:///p?x=1",
            "redis://u:%zz@h",
        ] {
            assert!(parse(u).is_err(), "{u}");
        }
    }
}
