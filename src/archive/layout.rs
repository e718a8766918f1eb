//! The organization-trail layout of a CloudTrail archive:
//! `[prefix/]AWSLogs/[o-orgid/]ACCOUNT/CloudTrail/REGION/YYYY/MM/DD/ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_unique.json.gz`.

use time::{Date, Month};

/// What a log file's key says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    pub account: String,
    pub region: String,
    pub day: Date,
    /// The file's time stamp (`YYYYMMDDTHHMMZ`) in seconds: its events are from before it.
    pub stamp: i64,
}

/// A CloudTrail digest file (integrity validation), never a log.
pub fn is_digest(key: &str) -> bool {
    key.contains("/CloudTrail-Digest/") || key.contains("_CloudTrail-Digest_")
}

pub fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

pub fn is_org(s: &str) -> bool {
    s.starts_with("o-") && s.len() > 2
}

/// A day folder's date from its three segments.
pub fn date(y: &str, m: &str, d: &str) -> Option<Date> {
    let (y, m, d) = (y.parse().ok()?, m.parse::<u8>().ok()?, d.parse().ok()?);
    Date::from_calendar_date(y, Month::try_from(m).ok()?, d).ok()
}

/// Reads a log file's key; `None` for anything that is not a log file in the layout.
pub fn parse_key(key: &str) -> Option<KeyInfo> {
    let at = match key.strip_prefix("AWSLogs/") {
        Some(_) => 0,
        None => key.find("/AWSLogs/")? + 1,
    };
    let mut seg = key[at..].split('/').skip(1);
    let mut account = seg.next()?;
    if is_org(account) {
        account = seg.next()?;
    }
    if !is_account(account) || seg.next()? != "CloudTrail" {
        return None;
    }
    let region = seg.next()?;
    let day = date(seg.next()?, seg.next()?, seg.next()?)?;
    let file = seg.next()?;
    if seg.next().is_some() {
        return None;
    }
    // ACCOUNT_CloudTrail_REGION_YYYYMMDDTHHMMZ_unique.json.gz
    let rest = file
        .strip_prefix(account)?
        .strip_prefix("_CloudTrail_")?
        .strip_prefix(region)?
        .strip_prefix('_')?;
    let stamp = rest.get(..14)?;
    let b = stamp.as_bytes();
    if b[8] != b'T' || b[13] != b'Z' || !(file.ends_with(".json.gz") || file.ends_with(".json")) {
        return None;
    }
    let stamp_day = date(&stamp[..4], &stamp[4..6], &stamp[6..8])?;
    let (h, m): (i64, i64) = (stamp[9..11].parse().ok()?, stamp[11..13].parse().ok()?);
    if h > 23 || m > 59 {
        return None;
    }
    let midnight = stamp_day.midnight().assume_utc().unix_timestamp();
    Some(KeyInfo {
        account: account.to_string(),
        region: region.to_string(),
        day,
        stamp: midnight + h * 3600 + m * 60,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    const KEY: &str = "trail/AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/09/03/111122223333_CloudTrail_eu-west-1_20260903T1205Z_AbCd.json.gz";

    #[test]
    fn a_log_key_gives_account_region_day_and_stamp() {
        let k = parse_key(KEY).unwrap();
        assert_eq!(k.account, "111122223333");
        assert_eq!(k.region, "eu-west-1");
        assert_eq!(k.day, date!(2026 - 09 - 03));
        assert_eq!(k.stamp, 1_788_393_600 + 12 * 3600 + 5 * 60);
        let no_org = KEY.replace("o-abc123/", "").replace("trail/", "");
        assert_eq!(parse_key(&no_org).unwrap().account, "111122223333");
    }

    #[test]
    fn keys_outside_the_layout_are_not_logs() {
        for bad in [
            "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/09/03/x.json.gz",
            "AWSLogs/1111/CloudTrail/eu-west-1/2026/09/03/1111_CloudTrail_eu-west-1_20260903T1205Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/13/03/111122223333_CloudTrail_eu-west-1_20260903T1205Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/09/03/notes.txt",
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/09/03/111122223333_CloudTrail_eu-west-1_20260903X1205Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/09/03/999922223333_CloudTrail_eu-west-1_20260903T1205Z_a.json.gz",
            "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/09/03/sub/111122223333_CloudTrail_eu-west-1_20260903T1205Z_a.json.gz",
            "logs/file.json.gz",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
        assert!(is_digest(
            "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/09/03/x"
        ));
    }
}
