//! A YAML printer that reproduces `sigs.k8s.io/yaml` (go-yaml v2) byte for byte.
//!
//! Flux writes `gotk-sync.yaml` with `sigs.k8s.io/yaml`, and kustomize prints every object
//! of `gotk-components.yaml` through the same JSON-to-YAML path. Matching its formatting
//! (key order, quoting, folding plain and quoted scalars past column 80, literal blocks
//! with chomping indicators, indentless sequences) means a repository moved between this
//! tool and the `flux` CLI shows no diff. No Rust YAML library prints this way, hence this
//! module: the rules follow go-yaml's emitter (`emitterc.go`, `encode.go`, `resolve.go`,
//! `sorter.go`).

use std::cmp::Ordering;

use crate::node::{Map, Node, is_float_syntax};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: usize = 2;

/// Prints one document the way `yaml.Marshal` does (ends with a newline).
pub(crate) fn document(node: &Node) -> String {
    let mut out = String::new();
    document_into(node, &mut out);
    out
}

/// Appends one document to `out`.
pub(crate) fn document_into(node: &Node, out: &mut String) {
    let mut emitter = Emitter {
        out,
        column: 0,
        whitespace: true,
        indention: true,
    };
    match node {
        Node::Map(map) if !map.0.is_empty() => emitter.block_map(map, 0),
        Node::Seq(items) if !items.is_empty() => emitter.block_seq(items, 0),
        other => emitter.value(other, 0, false),
    }
    // Document end: go-yaml writes an indent, which ends the last line.
    emitter.write_indent(0);
}

struct Emitter<'a> {
    out: &'a mut String,
    column: usize,
    whitespace: bool,
    indention: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Style {
    Plain,
    Single,
    Double,
    Literal,
}

impl Emitter<'_> {
    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(&mut self, indicator: &str, need_ws: bool, is_ws: bool, is_indention: bool) {
        if need_ws && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_ws;
        self.indention = self.indention && is_indention;
    }

    fn block_map(&mut self, map: &Map, indent: usize) {
        let mut entries: Vec<&(String, Node)> = map.0.iter().collect();
        entries.sort_by(|a, b| key_order(&a.0, &b.0));
        for (key, value) in entries {
            self.write_indent(indent);
            self.string(key, indent + BEST_INDENT, true);
            self.write_indicator(":", false, false, false);
            self.value(value, indent, true);
        }
    }

    fn block_seq(&mut self, items: &[Node], indent: usize) {
        for item in items {
            self.write_indent(indent);
            self.write_indicator("-", true, false, true);
            self.value(item, indent, false);
        }
    }

    /// A node in value position under a collection whose own indent is `indent`.
    fn value(&mut self, node: &Node, indent: usize, in_mapping: bool) {
        match node {
            Node::Map(map) if map.0.is_empty() => {
                self.write_indicator("{", true, true, false);
                self.write_indicator("}", false, false, false);
            }
            Node::Seq(items) if items.is_empty() => {
                self.write_indicator("[", true, true, false);
                self.write_indicator("]", false, false, false);
            }
            Node::Map(map) => self.block_map(map, indent + BEST_INDENT),
            Node::Seq(items) => {
                // go-yaml writes sequences under a mapping key "indentless".
                let nested = if in_mapping && !self.indention {
                    indent
                } else {
                    indent + BEST_INDENT
                };
                self.block_seq(items, nested);
            }
            Node::Str(s) => self.string(s, indent + BEST_INDENT, false),
            Node::Null => self.plain("null", indent, false),
            Node::Bool(b) => self.plain(if *b { "true" } else { "false" }, indent, false),
            Node::Int(i) => self.plain(&i.to_string(), indent, false),
            Node::Float(f) => self.plain(&go_float(*f), indent, false),
        }
    }

    fn string(&mut self, s: &str, indent: usize, simple_key: bool) {
        if is_safe_plain(s) {
            self.plain_ascii(s, indent, !simple_key);
            return;
        }
        let requested = if s.contains('\n') {
            Style::Literal
        } else if resolves_to_str(s) {
            Style::Plain
        } else {
            Style::Double
        };
        let style = select_style(s, requested, simple_key);
        let allow_breaks = !simple_key;
        match style {
            Style::Plain => self.plain(s, indent, allow_breaks),
            Style::Single => self.single_quoted(s, indent, allow_breaks),
            Style::Double => self.double_quoted(s, indent, allow_breaks),
            Style::Literal => self.literal(s, indent),
        }
    }

    /// [`Self::plain`] for ASCII text: columns are bytes, and a value that fits before
    /// column 80 (or has no space) is copied in one go.
    fn plain_ascii(&mut self, value: &str, indent: usize, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        if !allow_breaks || self.column + value.len() <= BEST_WIDTH + 1 || !value.contains(' ') {
            self.out.push_str(value);
            self.column += value.len();
        } else {
            let bytes = value.as_bytes();
            let mut spaces = false;
            for (i, &b) in bytes.iter().enumerate() {
                if b == b' ' {
                    if !spaces && self.column > BEST_WIDTH && bytes.get(i + 1) != Some(&b' ') {
                        self.write_indent(indent);
                    } else {
                        self.put(' ');
                    }
                    spaces = true;
                } else {
                    self.put(char::from(b));
                    spaces = false;
                }
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn plain(&mut self, value: &str, indent: usize, allow_breaks: bool) {
        if !self.whitespace {
            self.put(' ');
        }
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
    }

    fn single_quoted(&mut self, value: &str, indent: usize, allow_breaks: bool) {
        self.write_indicator("'", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        let mut breaks = false;
        for (i, &c) in chars.iter().enumerate() {
            if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < chars.len() - 1
                    && chars.get(i + 1) != Some(&' ')
                {
                    self.write_indent(indent);
                } else {
                    self.put(c);
                }
                spaces = true;
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.put_break();
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                }
                if c == '\'' {
                    self.put('\'');
                }
                self.put(c);
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn double_quoted(&mut self, value: &str, indent: usize, allow_breaks: bool) {
        self.write_indicator("\"", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        let mut spaces = false;
        for (i, &c) in chars.iter().enumerate() {
            if !is_printable(c) || c == '\u{feff}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{b}' => self.put('v'),
                    '\u{c}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1b}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{a0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    other => {
                        let v = u32::from(other);
                        let hex = if v <= 0xFF {
                            format!("x{v:02X}")
                        } else if v <= 0xFFFF {
                            format!("u{v:04X}")
                        } else {
                            format!("U{v:08X}")
                        };
                        for h in hex.chars() {
                            self.put(h);
                        }
                    }
                }
                spaces = false;
            } else if c == ' ' {
                if allow_breaks
                    && !spaces
                    && self.column > BEST_WIDTH
                    && i > 0
                    && i < chars.len() - 1
                {
                    self.write_indent(indent);
                    if chars.get(i + 1) == Some(&' ') {
                        self.put('\\');
                    }
                } else {
                    self.put(c);
                }
                spaces = true;
            } else {
                self.put(c);
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn literal(&mut self, value: &str, indent: usize) {
        self.write_indicator("|", true, false, false);
        let chars: Vec<char> = value.chars().collect();
        if chars.first().is_some_and(|&c| c == ' ' || is_break(c)) {
            self.write_indicator("2", false, false, false);
        }
        let chomp = match chars.len() {
            0 => Some("-"),
            n if !is_break(chars[n - 1]) => Some("-"),
            1 => Some("+"),
            n if is_break(chars[n - 2]) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for &c in &chars {
            if is_break(c) {
                self.put_break();
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent(indent);
                    breaks = false;
                }
                self.put(c);
                self.indention = false;
            }
        }
    }
}

/// ASCII text that go-yaml certainly prints plain: it starts with a letter that cannot
/// begin a YAML 1.1 boolean or null, is printable, has no leading or trailing space, and
/// no `: `, trailing `:` or ` #` that would make it an indicator.
fn is_safe_plain(s: &str) -> bool {
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    first.is_ascii_alphabetic()
        && !b"yYnNtTfFoO".contains(&first)
        && b.iter().all(|c| (0x20..=0x7e).contains(c))
        && b[b.len() - 1] != b' '
        && b[b.len() - 1] != b':'
        && !s.contains(": ")
        && !s.contains(" #")
}

fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_printable(c: char) -> bool {
    matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}')
        && c != '\u{feff}'
}

#[derive(Default)]
#[expect(
    clippy::struct_excessive_bools,
    reason = "mirrors go-yaml's scalar analysis flags one to one"
)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// go-yaml's `yaml_emitter_analyze_scalar`, for block context.
fn analyze(value: &str) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let chars: Vec<char> = value.chars().collect();
    let mut block_indicators = value.starts_with("---") || value.starts_with("...");
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break, mut previous_space, mut previous_break) =
        (false, false, false, false);
    let (mut line_breaks, mut special_characters) = (false, false);
    let mut preceded_by_whitespace = true;
    let last = chars.len() - 1;
    for (i, &c) in chars.iter().enumerate() {
        let followed_by_whitespace = i == last || matches!(chars[i + 1], ' ' | '\t');
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => block_indicators = true,
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match c {
                ':' if followed_by_whitespace => block_indicators = true,
                '#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(c) {
            special_characters = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= i == last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i == last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = matches!(c, ' ' | '\t' | '\0') || is_break(c);
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// go-yaml's `yaml_emitter_select_scalar_style` in block context.
fn select_style(value: &str, requested: Style, simple_key: bool) -> Style {
    let a = analyze(value);
    let mut style = requested;
    if simple_key && a.multiline {
        return Style::Double;
    }
    if style == Style::Plain && (!a.block_plain_allowed || (value.is_empty() && simple_key)) {
        style = Style::Single;
    }
    if style == Style::Single && !a.single_quoted_allowed {
        style = Style::Double;
    }
    if style == Style::Literal && (!a.block_allowed || simple_key) {
        style = Style::Double;
    }
    style
}

/// Whether go-yaml v2 would read `s` back as a string when printed unquoted (its
/// `resolve` plus the base-60 float check of `encode.go`).
fn resolves_to_str(s: &str) -> bool {
    let Some(first) = s.bytes().next() else {
        return false;
    };
    match first {
        b'y' | b'Y' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'o' | b'O' | b'~' => !matches!(
            s,
            "y" | "Y"
                | "yes"
                | "Yes"
                | "YES"
                | "n"
                | "N"
                | "no"
                | "No"
                | "NO"
                | "true"
                | "True"
                | "TRUE"
                | "false"
                | "False"
                | "FALSE"
                | "on"
                | "On"
                | "ON"
                | "off"
                | "Off"
                | "OFF"
                | "~"
                | "null"
                | "Null"
                | "NULL"
        ),
        b'.' => {
            !(matches!(s, ".inf" | ".Inf" | ".INF" | ".nan" | ".NaN" | ".NAN")
                || go_parse_float_ok(s))
        }
        b'+' | b'-' | b'0'..=b'9' => {
            if matches!(s, "+.inf" | "+.Inf" | "+.INF" | "-.inf" | "-.Inf" | "-.INF") {
                return false;
            }
            if looks_like_timestamp(s) {
                return false;
            }
            let plain: String = s.chars().filter(|&c| c != '_').collect();
            if go_parse_int_ok(&plain) || is_float_syntax(&plain) {
                return false;
            }
            if is_binary(&plain) {
                return false;
            }
            !is_base60_float(s)
        }
        _ => true,
    }
}

fn go_parse_int_ok(s: &str) -> bool {
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    let radix_ok =
        |body: &str, radix: u32| !body.is_empty() && body.chars().all(|c| c.is_digit(radix));
    if let Some(rest) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        radix_ok(rest, 16)
    } else if let Some(rest) = digits
        .strip_prefix("0o")
        .or_else(|| digits.strip_prefix("0O"))
    {
        radix_ok(rest, 8)
    } else if let Some(rest) = digits
        .strip_prefix("0b")
        .or_else(|| digits.strip_prefix("0B"))
    {
        radix_ok(rest, 2)
    } else if digits.len() > 1 && digits.starts_with('0') {
        radix_ok(&digits[1..], 8)
    } else {
        radix_ok(digits, 10)
    }
}

fn is_binary(s: &str) -> bool {
    let body = s.strip_prefix('-').unwrap_or(s);
    body.strip_prefix("0b")
        .is_some_and(|b| !b.is_empty() && b.chars().all(|c| c == '0' || c == '1'))
}

fn go_parse_float_ok(s: &str) -> bool {
    is_float_syntax(s)
}

/// go-yaml's `parseTimestamp` accepts `YYYY-M-D` optionally followed by a time.
fn looks_like_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return false;
    }
    let rest = &s[5..];
    let mut parts = rest.splitn(2, '-');
    let month = parts.next().unwrap_or_default();
    let Some(tail) = parts.next() else {
        return false;
    };
    let day_len = tail.bytes().take_while(u8::is_ascii_digit).count();
    let ok_num = |p: &str| (1..=2).contains(&p.len()) && p.bytes().all(|c| c.is_ascii_digit());
    if !ok_num(month) || !ok_num(&tail[..day_len]) {
        return false;
    }
    let after = &tail[day_len..];
    after.is_empty() || after.starts_with(['T', 't', ' '])
}

/// `^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$`
fn is_base60_float(s: &str) -> bool {
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (main, frac) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if frac.is_some_and(|f| !f.chars().all(|c| c.is_ascii_digit() || c == '_')) {
        return false;
    }
    let mut groups = main.split(':');
    let head = groups.next().unwrap_or_default();
    if !head.starts_with(|c: char| c.is_ascii_digit())
        || !head.chars().all(|c| c.is_ascii_digit() || c == '_')
    {
        return false;
    }
    let mut count = 0;
    for g in groups {
        count += 1;
        let ok = match g.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, d] => (b'0'..=b'5').contains(a) && d.is_ascii_digit(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    count > 0
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` as go-yaml prints floats.
fn go_float(f: f64) -> String {
    if f.is_nan() {
        return ".nan".to_owned();
    }
    if f.is_infinite() {
        return if f > 0.0 { ".inf" } else { "-.inf" }.to_owned();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..21).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// go-yaml v2's map key order (`sorter.go`): letters after other characters, and runs
/// of digits compared as numbers.
pub(crate) fn key_order(a: &str, b: &str) -> Ordering {
    let simple = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_alphabetic() || (c < b'A' && !c.is_ascii_digit()))
    };
    if simple(a) && simple(b) {
        // Fast path: without digits or punctuation above `A`, byte order is go-yaml's.
        return a.cmp(b);
    }
    if key_less(a, b) {
        Ordering::Less
    } else if key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return bl;
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an
                .wrapping_mul(10)
                .wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn
                .wrapping_mul(10)
                .wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::parse_documents;

    fn roundtrip(yaml: &str) -> String {
        let docs = parse_documents(yaml).expect("valid YAML");
        document(&docs[0])
    }

    #[test]
    fn quotes_like_go_yaml() {
        let out = roundtrip(
            "a: 'true'\nb: '1000'\nc: '*'\nd: ''\ne: 'v1.2'\nf: 'a: b'\ng: '2024-01-02'\nh: \"x\\ty\"\ni: 'yes'\nj: '- x'\n",
        );
        assert_eq!(
            out,
            "a: \"true\"\nb: \"1000\"\nc: '*'\nd: \"\"\ne: v1.2\nf: 'a: b'\ng: \"2024-01-02\"\nh: \"x\\ty\"\ni: \"yes\"\nj: '- x'\n"
        );
    }

    #[test]
    fn indents_sequences_and_literals() {
        let out = roundtrip("z:\n- a: 1\n  b: [x, {}]\n- |\n  line\n  two\nm: {}\nl: \"x\\ny\"\n");
        assert_eq!(
            out,
            "l: |-\n  x\n  y\nm: {}\nz:\n- a: 1\n  b:\n  - x\n  - {}\n- |\n  line\n  two\n"
        );
    }

    #[test]
    fn folds_long_plain_scalars_past_column_80() {
        let long = "word ".repeat(30);
        let out = roundtrip(&format!("k:\n  d: {}\n", long.trim_end()));
        let lines: Vec<&str> = out.lines().collect();
        assert!(lines.len() > 2, "{out}");
        assert!(lines[2].starts_with("    word"), "{out}");
    }

    #[test]
    fn sorts_keys_like_go_yaml() {
        let mut keys = vec!["b", "a_b", "aB", "x10", "x9", "A"];
        keys.sort_by(|a, b| key_order(a, b));
        assert_eq!(keys, ["A", "a_b", "aB", "b", "x9", "x10"]);
    }
}
