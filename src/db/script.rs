//! A dump is data: a streaming, line-by-line check of a SQL dump before it reaches a client
//! tool. It lexes just enough of each engine's client (strings, quoted identifiers, dollar
//! quotes, comments, COPY data blocks, statement ends, `DELIMITER`) to know which bytes the
//! client would treat as commands, and refuses anything that could run a program or touch a
//! file or another database: psql meta-commands other than pg_dump's own `\restrict` lines,
//! `COPY … PROGRAM` and server-file `COPY`, untrusted procedural languages, `ALTER SYSTEM`;
//! MariaDB client commands (`system`, `\!`, `source`, `pager`, `tee`, `use`, `connect`, …),
//! `INTO OUTFILE`/`DUMPFILE`, `LOAD DATA`/`LOAD XML`, UDF/plugin `SONAME`. On the way it
//! rewrites MariaDB `DEFINER=` clauses the loading account cannot use, and drops PostgreSQL
//! ownership and privilege statements (see `Rewrite`).

/// Which client will read the dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `mariadb`/`mysql` with `--binary-mode`.
    Mysql,
    /// `psql`.
    Postgres,
}

/// Why a dump was refused: the 1-based line and what was found there.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the dump is refused at line {line}: {what} (a dump may hold data only)")]
pub struct Refusal {
    /// 1-based line number in the dump.
    pub line: u64,
    /// What was found, in a few words.
    pub what: String,
}

/// What the dump holds, for the privilege preflight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DumpSummary {
    pub tables: bool,
    pub views: bool,
    pub triggers: bool,
    pub routines: bool,
    pub events: bool,
}

/// How statements are changed on their way to the client.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rewrite {
    /// MariaDB: the accounts (`user@host`, unquoted) the loading account may name as definer;
    /// `None` keeps every definer (SUPER or SET USER), `Some` rewrites all others to
    /// `CURRENT_USER`.
    pub(crate) definers_allowed: Option<Vec<String>>,
    /// PostgreSQL: drop `ALTER … OWNER TO`, `GRANT`, `REVOKE`, `SET SESSION AUTHORIZATION`,
    /// `SET ROLE`, `ALTER DEFAULT PRIVILEGES` statements.
    pub(crate) strip_owners: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Code,
    /// `'…'`; `true` when a backslash escapes (MariaDB, PostgreSQL `E'…'`).
    Single(bool),
    /// `"…"`: a MariaDB string (backslash escapes) or a PostgreSQL identifier.
    Double(bool),
    Backtick,
    /// A block comment (PostgreSQL nests them).
    Comment(u32),
    Dollar(Vec<u8>),
    /// PostgreSQL COPY data, until a line `\.`.
    CopyData,
}

/// Client commands of the MariaDB/MySQL command-line client, recognised as the first word of
/// a line when no statement is pending.
const MYSQL_COMMANDS: &[&str] = &[
    "?",
    "clear",
    "connect",
    "delimiter",
    "edit",
    "ego",
    "exit",
    "go",
    "help",
    "nopager",
    "notee",
    "nowarning",
    "pager",
    "print",
    "prompt",
    "quit",
    "rehash",
    "resetconnection",
    "source",
    "status",
    "system",
    "tee",
    "use",
    "charset",
    "warnings",
];

/// The first line of a MariaDB 10.11.8+ dump: the `\-` command turns on the client's sandbox
/// mode (no `system`, `source`, … from then on).
const SANDBOX: &[u8] = b"/*M!999999\\- enable the sandbox mode */";

/// PostgreSQL languages that can reach the operating system.
const UNTRUSTED_LANGUAGES: &[&str] = &[
    "c",
    "internal",
    "plpythonu",
    "plpython2u",
    "plpython3u",
    "plperlu",
    "pltclu",
    "plsh",
    "plrustu",
    "pljavau",
];

/// The line-by-line checker and rewriter.
pub(crate) struct Scanner {
    flavor: Flavor,
    rewrite: Rewrite,
    state: State,
    line: u64,
    delimiter: Vec<u8>,
    /// Code seen in the current statement (not just blanks and comments).
    pending: bool,
    /// The current statement's first words (lowercase), up to `WORDS_KEPT`.
    words: Vec<String>,
    /// The last word seen in code or, for PostgreSQL, inside a literal.
    prev: String,
    word: String,
    paren: u32,
    begin: u32,
    /// Set after a PostgreSQL `COPY … FROM stdin;`: the next line starts its data.
    copy_next: bool,
    /// The current statement has `FROM stdin` in code.
    from_stdin: bool,
    pub(crate) summary: DumpSummary,
    /// Definers rewritten (`user@host`), in order, each once.
    pub(crate) rewritten: Vec<String>,
    /// Ownership and privilege statements dropped.
    pub(crate) dropped: u64,
}

const WORDS_KEPT: usize = 8;

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

impl Scanner {
    pub(crate) fn new(flavor: Flavor, rewrite: Rewrite) -> Scanner {
        Scanner {
            flavor,
            rewrite,
            state: State::Code,
            line: 0,
            delimiter: b";".to_vec(),
            pending: false,
            words: Vec::new(),
            prev: String::new(),
            word: String::new(),
            paren: 0,
            begin: 0,
            copy_next: false,
            from_stdin: false,
            summary: DumpSummary::default(),
            rewritten: Vec::new(),
            dropped: 0,
        }
    }

    fn refuse(&self, what: impl Into<String>) -> Refusal {
        Refusal {
            line: self.line,
            what: what.into(),
        }
    }

    /// Checks one line (with its newline, if any) and returns what to send on: the line,
    /// a rewritten line, or nothing.
    pub(crate) fn line(&mut self, raw: &[u8]) -> Result<Option<Vec<u8>>, Refusal> {
        self.line += 1;
        let body = trim_eol(raw);
        if self.copy_next {
            self.copy_next = false;
            self.state = State::CopyData;
        }
        if self.state == State::CopyData {
            if body == b"\\." {
                self.state = State::Code;
            }
            return Ok(Some(raw.to_vec()));
        }
        if self.state == State::Code
            && !self.pending
            && let Some(out) = self.line_start(body)?
        {
            return Ok(out.map(|()| raw.to_vec()));
        }
        let start_pending = self.pending;
        let mut edits = Vec::new();
        self.scan(body, &mut edits)?;
        if self.flavor == Flavor::Postgres
            && self.rewrite.strip_owners
            && !start_pending
            && !self.pending
            && self.state == State::Code
            && is_owner_statement(body)
        {
            self.dropped += 1;
            return Ok(None);
        }
        if edits.is_empty() {
            return Ok(Some(raw.to_vec()));
        }
        let mut out = Vec::with_capacity(raw.len());
        let mut at = 0;
        for (s, e, with) in edits {
            out.extend_from_slice(&raw[at..s]);
            out.extend_from_slice(with.as_bytes());
            at = e;
        }
        out.extend_from_slice(&raw[at..]);
        Ok(Some(out))
    }

    /// Whole-line forms at the start of a statement: psql's `\restrict` lines (dropped) and
    /// MariaDB client commands (`DELIMITER` kept when harmless). `Some` when the line is done.
    fn line_start(&mut self, body: &[u8]) -> Result<Option<Option<()>>, Refusal> {
        let t = trim_start(body);
        match self.flavor {
            Flavor::Postgres => {
                for cmd in ["\\restrict ", "\\unrestrict "] {
                    if let Some(key) = t.strip_prefix(cmd.as_bytes())
                        && !key.is_empty()
                        && key.iter().all(|b| b.is_ascii_alphanumeric())
                    {
                        return Ok(Some(None));
                    }
                }
                Ok(None)
            }
            Flavor::Mysql => {
                if t.trim_ascii_end() == SANDBOX {
                    // mariadb-dump's own first line: puts the client in sandbox mode.
                    return Ok(Some(Some(())));
                }
                let w: Vec<u8> = t
                    .iter()
                    .take_while(|b| !b.is_ascii_whitespace() && **b != b';')
                    .map(|b| b.to_ascii_lowercase())
                    .collect();
                let w = String::from_utf8_lossy(&w).into_owned();
                if w == "delimiter" {
                    let d = trim_start(&t[9..]);
                    let d: Vec<u8> = d
                        .iter()
                        .take_while(|b| !b.is_ascii_whitespace())
                        .copied()
                        .collect();
                    if d.is_empty()
                        || d.len() > 4
                        || !d.iter().all(|b| matches!(b, b';' | b'$' | b'/' | b'|'))
                    {
                        return Err(self.refuse("a DELIMITER other than ; $ / |"));
                    }
                    self.delimiter = d;
                    return Ok(Some(Some(())));
                }
                if MYSQL_COMMANDS.contains(&w.as_str()) {
                    return Err(self.refuse(format!("the client command '{w}'")));
                }
                Ok(None)
            }
        }
    }

    /// Lexes one line in the current state; `edits` gets (start, end, replacement) spans.
    fn scan(&mut self, b: &[u8], edits: &mut Vec<(usize, usize, String)>) -> Result<(), Refusal> {
        let mut i = 0;
        while i < b.len() {
            i = match self.state.clone() {
                State::Code => self.code(b, i, edits)?,
                State::Single(esc) => self.quoted(b, i, b'\'', esc, State::Single(esc))?,
                State::Double(esc) => self.quoted(b, i, b'"', esc, State::Double(esc))?,
                State::Backtick => self.quoted(b, i, b'`', false, State::Backtick)?,
                State::Comment(depth) => self.comment(b, i, depth),
                State::Dollar(tag) => self.dollar(b, i, &tag)?,
                State::CopyData => unreachable!("copy data is handled per line"),
            };
        }
        self.end_word()?;
        Ok(())
    }

    fn literal_byte(&mut self, c: u8) -> Result<(), Refusal> {
        if self.flavor == Flavor::Postgres {
            // Code hidden in literals (function bodies, EXECUTE strings) is checked too.
            if is_word_byte(c) && c != b'$' {
                self.word.push(c.to_ascii_lowercase() as char);
            } else {
                self.end_word()?;
            }
        }
        Ok(())
    }

    fn quoted(
        &mut self,
        b: &[u8],
        i: usize,
        q: u8,
        esc: bool,
        st: State,
    ) -> Result<usize, Refusal> {
        let mut i = i;
        while i < b.len() {
            let c = b[i];
            if esc && c == b'\\' {
                i += 2;
                continue;
            }
            if c == q {
                if b.get(i + 1) == Some(&q) {
                    i += 2;
                    continue;
                }
                self.state = State::Code;
                self.end_word()?;
                return Ok(i + 1);
            }
            if st != State::Backtick {
                self.literal_byte(c)?;
            }
            i += 1;
        }
        self.state = st;
        Ok(i.min(b.len()))
    }

    fn comment(&mut self, b: &[u8], i: usize, depth: u32) -> usize {
        let mut i = i;
        let mut depth = depth;
        while i < b.len() {
            if b[i..].starts_with(b"*/") {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    self.state = State::Code;
                    return i;
                }
                continue;
            }
            if self.flavor == Flavor::Postgres && b[i..].starts_with(b"/*") {
                depth += 1;
                i += 2;
                continue;
            }
            i += 1;
        }
        self.state = State::Comment(depth);
        i
    }

    fn dollar(&mut self, b: &[u8], i: usize, tag: &[u8]) -> Result<usize, Refusal> {
        let mut i = i;
        while i < b.len() {
            if b[i] == b'$' && b[i..].starts_with(tag) {
                self.state = State::Code;
                self.end_word()?;
                return Ok(i + tag.len());
            }
            self.literal_byte(b[i])?;
            i += 1;
        }
        Ok(i)
    }

    /// One step in code: returns the next index.
    fn code(
        &mut self,
        b: &[u8],
        i: usize,
        edits: &mut Vec<(usize, usize, String)>,
    ) -> Result<usize, Refusal> {
        let c = b[i];
        let pg = self.flavor == Flavor::Postgres;
        if is_word_byte(c) && !(c == b'$' && self.word.is_empty()) {
            self.word.push(c.to_ascii_lowercase() as char);
            self.pending = true;
            return Ok(i + 1);
        }
        let ended = self.end_word()?;
        if !pg && ended.as_deref() == Some("definer") {
            self.definer(b, i, edits);
        }
        if !pg && b[i..].starts_with(&self.delimiter) {
            self.end_statement()?;
            return Ok(i + self.delimiter.len());
        }
        match c {
            b'\\' => {
                let cmd = String::from_utf8_lossy(&b[i..b.len().min(i + 2)]).into_owned();
                Err(self.refuse(format!("the client command '{cmd}'")))
            }
            b'\'' => {
                let esc = !pg
                    || (i > 0 && matches!(b[i - 1], b'e' | b'E') && !self.prev_is_word(b, i - 1));
                self.state = State::Single(esc);
                self.pending = true;
                Ok(i + 1)
            }
            b'"' => {
                self.state = State::Double(!pg);
                self.pending = true;
                Ok(i + 1)
            }
            b'`' if !pg => {
                self.state = State::Backtick;
                self.pending = true;
                Ok(i + 1)
            }
            b'#' if !pg => Ok(b.len()),
            b'-' if b[i..].starts_with(b"--")
                && (pg || b.get(i + 2).is_none_or(|c| c.is_ascii_whitespace())) =>
            {
                Ok(b.len())
            }
            b'/' if b[i..].starts_with(b"/*") => Ok(self.comment_start(b, i)),
            b'*' if !pg && b[i..].starts_with(b"*/") => Ok(i + 2),
            b'$' if pg => Ok(self.dollar_start(b, i)),
            b'(' => {
                self.paren += 1;
                self.pending = true;
                Ok(i + 1)
            }
            b')' => {
                self.paren = self.paren.saturating_sub(1);
                Ok(i + 1)
            }
            b';' if pg => self.pg_semicolon(b, i),
            c if c.is_ascii_whitespace() => Ok(i + 1),
            _ => {
                self.pending = true;
                Ok(i + 1)
            }
        }
    }

    /// `/*`: a comment, or in MariaDB an executable `/*!…` / `/*M!…` whose contents are code.
    fn comment_start(&mut self, b: &[u8], i: usize) -> usize {
        let pg = self.flavor == Flavor::Postgres;
        let versioned = !pg && (b[i..].starts_with(b"/*!") || b[i..].starts_with(b"/*M!"));
        if versioned {
            self.pending = true;
            let skip = if b[i + 2] == b'!' { 3 } else { 4 };
            let digits = b[i + skip..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .count();
            return i + skip + digits;
        }
        self.state = State::Comment(1);
        i + 2
    }

    /// psql ends a statement at `;` outside parentheses and routine bodies.
    fn pg_semicolon(&mut self, b: &[u8], i: usize) -> Result<usize, Refusal> {
        if self.paren == 0 && self.begin == 0 {
            self.end_statement()?;
            if self.copy_next && !trim_start(&b[i + 1..]).is_empty() {
                return Err(self.refuse("text after COPY … FROM stdin on its line"));
            }
        }
        Ok(i + 1)
    }

    fn prev_is_word(&self, b: &[u8], at: usize) -> bool {
        at > 0 && is_word_byte(b[at - 1])
    }

    fn dollar_start(&mut self, b: &[u8], i: usize) -> usize {
        let prev_word = i > 0 && is_word_byte(b[i - 1]);
        let rest = &b[i + 1..];
        let n = rest
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_' || **c >= 0x80)
            .count();
        let starts_ok = n == 0 || !rest[0].is_ascii_digit();
        if !prev_word && starts_ok && rest.get(n) == Some(&b'$') {
            let tag = b[i..i + n + 2].to_vec();
            self.pending = true;
            self.state = State::Dollar(tag);
            return i + n + 2;
        }
        self.pending = true;
        i + 1
    }

    /// Ends the word being read, checks it against the previous one, and returns it.
    fn end_word(&mut self) -> Result<Option<String>, Refusal> {
        if self.word.is_empty() {
            return Ok(None);
        }
        let w = std::mem::take(&mut self.word);
        if self.state == State::Code && self.words.len() < WORDS_KEPT {
            self.words.push(w.clone());
        }
        self.check_pair(&w)?;
        if self.state == State::Code && self.flavor == Flavor::Postgres {
            self.track_begin(&w);
            if self.prev == "from" && w == "stdin" {
                self.from_stdin = true;
            }
        }
        self.prev = w.clone();
        Ok(Some(w))
    }

    fn track_begin(&mut self, w: &str) {
        let ws: Vec<&str> = self.words.iter().map(String::as_str).collect();
        let routine = matches!(ws.as_slice(), ["create", "function" | "procedure", ..])
            || matches!(
                ws.as_slice(),
                ["create", "or", "replace", "function" | "procedure", ..]
            );
        if routine {
            match w {
                "begin" | "case" => self.begin += 1,
                "end" => self.begin = self.begin.saturating_sub(1),
                _ => {}
            }
        }
    }

    fn check_pair(&mut self, w: &str) -> Result<(), Refusal> {
        let p = self.prev.as_str();
        let bad = match self.flavor {
            Flavor::Postgres => match (p, w) {
                ("to" | "from", "program") => Some("COPY … PROGRAM"),
                ("alter", "system") => Some("ALTER SYSTEM"),
                ("language", l) if UNTRUSTED_LANGUAGES.contains(&l) => {
                    Some("a function in an untrusted language")
                }
                ("lo_import" | "lo_export" | "pg_read_file" | "pg_read_binary_file", _) => {
                    Some("server file access")
                }
                _ => None,
            },
            Flavor::Mysql => match (p, w) {
                ("into", "outfile" | "dumpfile") => Some("SELECT … INTO OUTFILE/DUMPFILE"),
                ("load", "data" | "xml") => Some("LOAD DATA/XML"),
                (_, "soname") => Some("a server plugin or UDF library (SONAME)"),
                ("install", "plugin") => Some("INSTALL PLUGIN"),
                _ => None,
            },
        };
        match bad {
            Some(what) => Err(self.refuse(what)),
            None => Ok(()),
        }
    }

    fn end_statement(&mut self) -> Result<(), Refusal> {
        self.end_word()?;
        let words = std::mem::take(&mut self.words);
        let ws: Vec<&str> = words.iter().map(String::as_str).collect();
        self.note_kind(&ws);
        if self.flavor == Flavor::Postgres && ws.first() == Some(&"copy") {
            if !self.from_stdin {
                return Err(self.refuse("a COPY other than COPY … FROM stdin"));
            }
            self.copy_next = true;
        }
        self.words.clear();
        self.from_stdin = false;
        self.pending = false;
        self.paren = 0;
        self.begin = 0;
        Ok(())
    }

    fn note_kind(&mut self, ws: &[&str]) {
        let s = &mut self.summary;
        for w in ws.iter().take(6) {
            match *w {
                "table" if ws.first() == Some(&"create") => s.tables = true,
                "view" if ws.first() == Some(&"create") => s.views = true,
                "trigger" => s.triggers = true,
                "procedure" | "function" => s.routines = true,
                "event" => s.events = true,
                _ => {}
            }
        }
        if ws.first() == Some(&"insert") || ws.first() == Some(&"copy") {
            s.tables = true;
        }
    }

    /// MariaDB: after the word `DEFINER`, `= account` is rewritten to `= CURRENT_USER` when
    /// the loading account may not use that account.
    fn definer(&mut self, b: &[u8], i: usize, edits: &mut Vec<(usize, usize, String)>) {
        let Some(allowed) = &self.rewrite.definers_allowed else {
            return;
        };
        let mut j = i;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if b.get(j) != Some(&b'=') {
            return;
        }
        j += 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        let start = j;
        let Some((user, after)) = account_part(b, j) else {
            return;
        };
        if b.get(after) != Some(&b'@') {
            return;
        }
        let Some((host, end)) = account_part(b, after + 1) else {
            return;
        };
        let acct = format!("{user}@{host}");
        if allowed.iter().any(|a| a == &acct) {
            return;
        }
        if !self.rewritten.contains(&acct) {
            self.rewritten.push(acct);
        }
        edits.push((start, end, "CURRENT_USER".into()));
    }
}

/// One side of `user@host`: backtick-, single- or double-quoted, or a bare word.
fn account_part(b: &[u8], i: usize) -> Option<(String, usize)> {
    let q = *b.get(i)?;
    if matches!(q, b'`' | b'\'' | b'"') {
        let mut v = Vec::new();
        let mut j = i + 1;
        loop {
            let c = *b.get(j)?;
            if c == q {
                if b.get(j + 1) == Some(&q) {
                    v.push(q);
                    j += 2;
                    continue;
                }
                return Some((String::from_utf8_lossy(&v).into_owned(), j + 1));
            }
            if c == b'\\' && q != b'`' {
                v.push(*b.get(j + 1)?);
                j += 2;
                continue;
            }
            v.push(c);
            j += 1;
        }
    }
    let n = b[i..]
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'%' | b'-'))
        .count();
    (n > 0).then(|| (String::from_utf8_lossy(&b[i..i + n]).into_owned(), i + n))
}

/// A one-line PostgreSQL ownership or privilege statement.
fn is_owner_statement(body: &[u8]) -> bool {
    let t = String::from_utf8_lossy(trim_start(body)).to_ascii_lowercase();
    let t = t.trim_end();
    if !t.ends_with(';') {
        return false;
    }
    (t.starts_with("alter ") && t.contains(" owner to "))
        || t.starts_with("grant ")
        || t.starts_with("revoke ")
        || t.starts_with("set session authorization ")
        || t.starts_with("set role ")
        || t.starts_with("alter default privileges ")
}

fn trim_eol(raw: &[u8]) -> &[u8] {
    let b = raw.strip_suffix(b"\n").unwrap_or(raw);
    b.strip_suffix(b"\r").unwrap_or(b)
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

/// A reader that passes a dump through a `Scanner`: checked, rewritten lines come out; a
/// refused line stops it with an error (and the refusal is kept in `refusal`).
pub(crate) struct Filtered<'a> {
    inner: std::io::BufReader<&'a mut dyn std::io::Read>,
    pub(crate) scanner: Scanner,
    line: Vec<u8>,
    out: Vec<u8>,
    pos: usize,
    pub(crate) refusal: Option<Refusal>,
}

impl<'a> Filtered<'a> {
    pub(crate) fn new(r: &'a mut dyn std::io::Read, scanner: Scanner) -> Filtered<'a> {
        Filtered {
            inner: std::io::BufReader::with_capacity(256 << 10, r),
            scanner,
            line: Vec::new(),
            out: Vec::new(),
            pos: 0,
            refusal: None,
        }
    }
}

impl std::io::Read for Filtered<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::io::BufRead;
        while self.pos >= self.out.len() {
            if let Some(r) = &self.refusal {
                return Err(std::io::Error::other(r.to_string()));
            }
            self.line.clear();
            if self.inner.read_until(b'\n', &mut self.line)? == 0 {
                return Ok(0);
            }
            match self.scanner.line(&self.line) {
                Ok(Some(l)) => {
                    self.out = l;
                    self.pos = 0;
                }
                Ok(None) => {}
                Err(r) => self.refusal = Some(r),
            }
        }
        let n = buf.len().min(self.out.len() - self.pos);
        buf[..n].copy_from_slice(&self.out[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Reads a whole dump through a `Scanner` without sending it anywhere: what it holds, or the
/// first refused line. An I/O error reading the dump is returned as `Err(Err(e))`.
pub(crate) fn check(
    flavor: Flavor,
    r: &mut dyn std::io::Read,
) -> Result<DumpSummary, Result<Refusal, std::io::Error>> {
    let mut f = Filtered::new(r, Scanner::new(flavor, Rewrite::default()));
    match std::io::copy(&mut f, &mut std::io::sink()) {
        Ok(_) => Ok(f.scanner.summary),
        Err(e) => Err(f.refusal.take().ok_or(e)),
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
