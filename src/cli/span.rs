//! Time spans given on the command line (`--dump-timeout`, `gc --remote --grace`): a number of
//! seconds, or a number with `s`, `m`, `h` or `d`; fractions allowed (`1.5h`).

use std::time::Duration;

/// Whether a zero span means something for the option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Zero {
    /// Zero is a valid choice (a grace period of none).
    Allowed,
    /// Zero is refused (a timeout that would stop everything at once).
    Refused,
}

/// The longest span accepted: about 31 years, far past any timeout or grace period, and small
/// enough that no later arithmetic on it overflows.
const MAX_SECS: f64 = 1e9;

/// Parses `s` as a span; the error names the input and shows the accepted forms.
pub fn parse_span(s: &str, zero: Zero) -> Result<Duration, String> {
    let t = s.trim();
    let (num, per) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        Some((i, 'd')) => (&t[..i], 86400.0),
        _ => (t, 1.0),
    };
    let bad = || format!("'{s}': expected a time such as 90, 90s, 10m, 2h or 1d");
    // Only plain decimal numbers: no sign, exponent, "inf" or "nan".
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return Err(bad());
    }
    let secs = num.parse::<f64>().map_err(|_| bad())? * per;
    if !secs.is_finite() || secs >= MAX_SECS {
        return Err(format!("'{s}' is too long a time"));
    }
    if secs == 0.0 && zero == Zero::Refused {
        return Err(format!("'{s}': the time must be more than zero"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `--dump-timeout`: more than zero.
pub fn parse_timeout(s: &str) -> Result<Duration, String> {
    parse_span(s, Zero::Refused)
}

/// `--grace`: zero allowed.
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    parse_span(s, Zero::Allowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions() {
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert_eq!(parse_grace("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_timeout("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout(" 10m "), Ok(Duration::from_secs(600)));
        assert_eq!(parse_timeout("1.5h"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_timeout("0.5s"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn refusals_name_the_input() {
        for bad in [
            "", "1w", "-5", "+5", "1e3", "inf", "nan", "m", "1..2", "5 m",
        ] {
            let e = parse_grace(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")), "{bad}: {e}");
        }
        assert!(parse_timeout("0").unwrap_err().contains("more than zero"));
        assert!(parse_timeout("0m").is_err());
        assert!(
            parse_grace("99999999999999999d")
                .unwrap_err()
                .contains("too long")
        );
        assert!(parse_timeout("40y").is_err());
    }
}
