//! Go-style durations (`5m`, `1m30s`, `1h`), because flux's flags and manifests use them.
//!
//! Parsing accepts what users type for flux; formatting reproduces Go's `time.Duration`
//! `String()` (`1m0s`, `10m0s`), which is what flux writes into `gotk-sync.yaml`.

use std::time::Duration;

/// Parses a Go duration: a sequence of `<number><unit>` with units `h`, `m`, `s`, `ms`.
pub(crate) fn parse_duration(input: &str) -> Result<Duration, String> {
    let text = input.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let invalid = || {
        format!("invalid duration `{input}`: use a number and a unit, e.g. `30s`, `5m` or `1h30m`")
    };
    if text.is_empty() {
        return Err(invalid());
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        if digits == 0 {
            return Err(invalid());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(invalid()),
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Formats like Go's `time.Duration.String()` for whole seconds: `1m0s`, `10m0s`, `1h0m0s`, `30s`.
pub(crate) fn format_go_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_flux_users_type() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_mins(5)));
        assert_eq!(parse_duration("1m0s"), Ok(Duration::from_mins(1)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_mins(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("five minutes").is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(Duration::from_mins(1)), "1m0s");
        assert_eq!(format_go_duration(Duration::from_mins(10)), "10m0s");
        assert_eq!(format_go_duration(Duration::from_hours(1)), "1h0m0s");
        assert_eq!(format_go_duration(Duration::from_secs(30)), "30s");
    }
}
