//! AWS region codes: validation of the region lists written in the config.
//!
//! [`check_region`] sorts a code into a known region, a well-formed but unknown
//! one (AWS opens new regions several times a year, so that is only a warning),
//! or something that is not a region code at all (an error), with a
//! "did you mean" hint when a known code is close.
//!
//! Shapes follow the partition regexes of botocore's `partitions.json`
//! (2026-08), checked by hand rather than with the `regex` crate.

/// Every known region code, all partitions.
pub const KNOWN_REGIONS: &[&str] = &[
    // aws
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "ca-west-1",
    "mx-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-south-1",
    "me-central-1",
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-1",
    "ap-south-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    // aws-cn
    "cn-north-1",
    "cn-northwest-1",
    // aws-us-gov
    "us-gov-east-1",
    "us-gov-west-1",
    // aws-eusc
    "eusc-de-east-1",
    // aws-iso
    "us-iso-east-1",
    "us-iso-west-1",
    // aws-iso-b
    "us-isob-east-1",
    "us-isob-west-1",
    // aws-iso-e
    "eu-isoe-west-1",
    // aws-iso-f
    "us-isof-east-1",
    "us-isof-south-1",
];

/// Outcome of [`check_region`].
///
/// `why` texts start with a verb so they read as the end of a sentence:
/// `format!("region {code:?} {why}")`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegionCheck {
    /// A known region of this partition.
    Known { partition: &'static str },
    /// Well-formed for a partition but not in the known list (new regions appear several times a year): a warning.
    ///
    /// `hint` is always `None`: a well-formed unknown code such as `eu-west-4`
    /// or `ap-southeast-9` is most likely a region newer than
    /// [`KNOWN_REGIONS`], and pointing at its nearest sibling (`eu-west-1`)
    /// would be noise. Misspellings that still fit the shape, like
    /// `eu-nrth-1`, are reported as [`RegionCheck::Invalid`] instead.
    UnknownWellFormed {
        partition: &'static str,
        hint: Option<&'static str>,
    },
    /// Not a region code: an error. `hint` is the closest known code when one is close (edit distance <= 2), e.g. "eu-nrth-1" -> "eu-north-1", "us-east1" -> "us-east-1", "US-EAST-1" -> "us-east-1".
    ///
    /// A few cases hint by meaning rather than spelling: an availability or
    /// Local Zone hints its region (`us-east-1a` -> `us-east-1`), a FIPS
    /// pseudo-region its plain region (`fips-us-east-1` -> `us-east-1`), and a
    /// `<partition>-global` pseudo-region the region where that partition
    /// records global-service events (`aws-global` -> `us-east-1`).
    Invalid {
        why: &'static str,
        hint: Option<&'static str>,
    },
}

const EMPTY: &str = "is empty";
const WHITESPACE: &str = "has leading or trailing whitespace";
const PSEUDO_REGION: &str = "is an SDK pseudo-region, not a region where CloudTrail records events";
const FIPS_PSEUDO_REGION: &str =
    "is a FIPS endpoint pseudo-region, not a region code (CloudTrail records the plain region)";
const UPPERCASE: &str = "is not a region code (expected lowercase like us-east-1)";
const NON_ASCII: &str = "contains non-ASCII characters (expected lowercase ASCII like us-east-1)";
const MISSPELT_DIRECTION: &str = "is not a known region and its middle word looks like a misspelt \
     direction (east, west, north, south, central, ...)";
const PARTITION_ONLY: &str = "names a partition but no location (expected like us-gov-west-1)";
const AVAILABILITY_ZONE: &str = "is an availability zone, not a region (drop the trailing letter)";
const LOCAL_ZONE: &str = "is a Local Zone or Wavelength Zone, not a region";
const AVAILABILITY_ZONE_ID: &str = "is an availability zone ID, not a region code";
const BAD_SHAPE: &str = "is not a region code (expected a shape like us-east-1)";

/// Hints are only offered within this edit distance.
const MAX_HINT_DISTANCE: usize = 2;

/// One partition's region regex, `^(prefix)\w+\-\d+$`.
struct Shape {
    partition: &'static str,
    /// Alternative fixed starts, each ending in `-`.
    prefixes: &'static [&'static str],
}

/// Region shapes, most specific first.
const SHAPES: &[Shape] = &[
    Shape {
        partition: "aws-us-gov",
        prefixes: &["us-gov-"],
    },
    Shape {
        partition: "aws-iso",
        prefixes: &["us-iso-"],
    },
    Shape {
        partition: "aws-iso-b",
        prefixes: &["us-isob-"],
    },
    Shape {
        partition: "aws-iso-f",
        prefixes: &["us-isof-"],
    },
    Shape {
        partition: "aws-iso-e",
        prefixes: &["eu-isoe-"],
    },
    Shape {
        partition: "aws-eusc",
        prefixes: &["eusc-de-"],
    },
    Shape {
        partition: "aws-cn",
        prefixes: &["cn-"],
    },
    Shape {
        partition: "aws",
        prefixes: &[
            "us-", "eu-", "ap-", "sa-", "ca-", "me-", "af-", "il-", "mx-",
        ],
    },
];

/// Words used in the middle of region codes. A middle word that is not one of
/// these but within [`MAX_HINT_DISTANCE`] of one is taken as a typo.
/// `southwest` is unused so far but listed so that a future region using it
/// is not mistaken for a misspelt `southeast`.
const DIRECTIONS: &[&str] = &[
    "east",
    "west",
    "north",
    "south",
    "central",
    "northeast",
    "northwest",
    "southeast",
    "southwest",
];

/// Partition names that fit the `aws` regex as a middle word (`us-gov-1`)
/// but leave the location out.
const PARTITION_WORDS: &[&str] = &["gov", "iso", "isob", "isoe", "isof"];

/// Checks one region code from the config.
pub fn check_region(code: &str) -> RegionCheck {
    if code.trim().is_empty() {
        return invalid(EMPTY, None);
    }
    let trimmed = code.trim();
    if trimmed != code {
        return invalid(WHITESPACE, closest_known(trimmed));
    }

    let lower = code.to_ascii_lowercase();
    if let Some(partition) = lower.strip_suffix("-global") {
        return invalid(PSEUDO_REGION, global_region(partition));
    }
    if let Some(base) = lower
        .strip_prefix("fips-")
        .or_else(|| lower.strip_suffix("-fips"))
    {
        return invalid(FIPS_PSEUDO_REGION, known(base));
    }
    if lower != code {
        return invalid(UPPERCASE, closest_known(&lower));
    }
    if !code.is_ascii() {
        return invalid(NON_ASCII, closest_known(code));
    }

    if let Some((partition, word)) = split_shape(code) {
        if known(code).is_some() {
            return RegionCheck::Known { partition };
        }
        if is_misspelt_direction(word) {
            return invalid(MISSPELT_DIRECTION, closest_known(code));
        }
        if PARTITION_WORDS.contains(&word) {
            return invalid(PARTITION_ONLY, closest_known(code));
        }
        return RegionCheck::UnknownWellFormed {
            partition,
            hint: None,
        };
    }

    // `us-east-1a`: a well-formed region followed by a zone letter.
    let region_part = code.trim_end_matches(|c: char| c.is_ascii_lowercase());
    if region_part.len() < code.len() && split_shape(region_part).is_some() {
        return invalid(AVAILABILITY_ZONE, known(region_part));
    }
    // `us-west-2-lax-1a`, `us-east-1-wl1-bos-wlz-1`: a known region, then more.
    if let Some(region) = KNOWN_REGIONS.iter().copied().find(|region| {
        code.strip_prefix(region)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| !rest.is_empty())
    }) {
        return invalid(LOCAL_ZONE, Some(region));
    }
    // `use1-az1`
    if code
        .rsplit_once("-az")
        .is_some_and(|(head, number)| !head.is_empty() && is_number(number))
    {
        return invalid(AVAILABILITY_ZONE_ID, None);
    }
    invalid(BAD_SHAPE, closest_known(code))
}

/// Partition of a region code by shape ("aws", "aws-cn", ...), None when no shape matches.
///
/// This is the botocore regex only: it accepts codes that [`check_region`]
/// rejects, such as `us-EAST-1` (`\w` includes uppercase), `eu-nrth-1` or
/// `us-gov-1`.
pub fn partition_of(code: &str) -> Option<&'static str> {
    split_shape(code).map(|(partition, _)| partition)
}

/// The region where a partition records its global-service events: "aws" -> "us-east-1", "aws-cn" -> "cn-north-1", "aws-us-gov" -> "us-gov-west-1"; others None.
pub fn global_region(partition: &str) -> Option<&'static str> {
    match partition {
        "aws" => Some("us-east-1"),
        "aws-cn" => Some("cn-north-1"),
        "aws-us-gov" => Some("us-gov-west-1"),
        _ => None,
    }
}

fn invalid(why: &'static str, hint: Option<&'static str>) -> RegionCheck {
    RegionCheck::Invalid { why, hint }
}

/// Matches `code` against [`SHAPES`]; returns the partition and the `\w+` word.
fn split_shape(code: &str) -> Option<(&'static str, &str)> {
    SHAPES.iter().find_map(|shape| {
        let rest = shape
            .prefixes
            .iter()
            .find_map(|prefix| code.strip_prefix(prefix))?;
        let (word, number) = rest.rsplit_once('-')?;
        (is_word(word) && is_number(number)).then_some((shape.partition, word))
    })
}

/// `\w+` in ASCII: one or more of `[A-Za-z0-9_]`.
fn is_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `\d+` in ASCII.
fn is_number(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn known(code: &str) -> Option<&'static str> {
    KNOWN_REGIONS.iter().copied().find(|region| *region == code)
}

fn is_misspelt_direction(word: &str) -> bool {
    !DIRECTIONS.contains(&word)
        && DIRECTIONS
            .iter()
            .any(|direction| within_hint_distance(word, direction))
}

/// The known code nearest to `code` within [`MAX_HINT_DISTANCE`]; on a tie,
/// the one listed first in [`KNOWN_REGIONS`].
fn closest_known(code: &str) -> Option<&'static str> {
    let len = code.chars().count();
    let mut best: Option<(&'static str, usize)> = None;
    for &region in KNOWN_REGIONS {
        if region.len().abs_diff(len) > MAX_HINT_DISTANCE {
            continue;
        }
        let distance = levenshtein(code, region);
        if distance <= MAX_HINT_DISTANCE && best.is_none_or(|(_, d)| distance < d) {
            best = Some((region, distance));
        }
    }
    best.map(|(region, _)| region)
}

fn within_hint_distance(a: &str, b: &str) -> bool {
    a.chars().count().abs_diff(b.chars().count()) <= MAX_HINT_DISTANCE
        && levenshtein(a, b) <= MAX_HINT_DISTANCE
}

/// Edit distance (insertions, deletions, substitutions) counted in chars.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `previous[j]`: distance between the first i chars of `a` and the first j of `b`.
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    let mut current = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let substitute = previous[j] + usize::from(ca != cb);
            let delete = previous[j + 1] + 1;
            let insert = current[j] + 1;
            current[j + 1] = substitute.min(delete).min(insert);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts table from botocore's partitions.json, 2026-08.
    const PARTITIONS: &[(&str, &[&str])] = &[
        (
            "aws",
            &[
                "us-east-1",
                "us-east-2",
                "us-west-1",
                "us-west-2",
                "ca-central-1",
                "ca-west-1",
                "mx-central-1",
                "sa-east-1",
                "eu-west-1",
                "eu-west-2",
                "eu-west-3",
                "eu-central-1",
                "eu-central-2",
                "eu-north-1",
                "eu-south-1",
                "eu-south-2",
                "il-central-1",
                "me-south-1",
                "me-central-1",
                "af-south-1",
                "ap-east-1",
                "ap-east-2",
                "ap-south-1",
                "ap-south-2",
                "ap-northeast-1",
                "ap-northeast-2",
                "ap-northeast-3",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-southeast-3",
                "ap-southeast-4",
                "ap-southeast-5",
                "ap-southeast-6",
                "ap-southeast-7",
            ],
        ),
        ("aws-cn", &["cn-north-1", "cn-northwest-1"]),
        ("aws-us-gov", &["us-gov-east-1", "us-gov-west-1"]),
        ("aws-eusc", &["eusc-de-east-1"]),
        ("aws-iso", &["us-iso-east-1", "us-iso-west-1"]),
        ("aws-iso-b", &["us-isob-east-1", "us-isob-west-1"]),
        ("aws-iso-e", &["eu-isoe-west-1"]),
        ("aws-iso-f", &["us-isof-east-1", "us-isof-south-1"]),
    ];

    #[test]
    fn known_regions_is_exactly_the_partition_table() {
        let table: Vec<&str> = PARTITIONS
            .iter()
            .flat_map(|(_, regions)| regions.iter().copied())
            .collect();
        assert_eq!(KNOWN_REGIONS, table.as_slice());
    }

    #[test]
    fn every_known_region_is_known_with_its_partition() {
        for &(partition, regions) in PARTITIONS {
            for &region in regions {
                assert_eq!(
                    check_region(region),
                    RegionCheck::Known { partition },
                    "{region}"
                );
                assert_eq!(partition_of(region), Some(partition), "{region}");
            }
        }
    }

    #[test]
    fn every_known_middle_word_is_a_direction() {
        for &region in KNOWN_REGIONS {
            let (_, word) = split_shape(region).expect(region);
            assert!(DIRECTIONS.contains(&word), "{region}: {word}");
        }
    }

    #[test]
    fn unknown_well_formed() {
        let cases = [
            ("us-east-9", "aws"),
            ("eu-west-7", "aws"),
            ("ap-southeast-9", "aws"),
            ("eu-west-4", "aws"),
            ("ap-southwest-1", "aws"),
            ("us-east-11", "aws"),
            ("us-gov-east-7", "aws-us-gov"),
            ("cn-south-1", "aws-cn"),
            ("us-iso-north-1", "aws-iso"),
            ("us-isob-south-1", "aws-iso-b"),
            ("us-isof-west-2", "aws-iso-f"),
            ("eu-isoe-east-1", "aws-iso-e"),
            ("eusc-de-west-1", "aws-eusc"),
        ];
        for (code, partition) in cases {
            assert_eq!(
                check_region(code),
                RegionCheck::UnknownWellFormed {
                    partition,
                    hint: None
                },
                "{code}"
            );
        }
    }

    #[test]
    fn invalid() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("", EMPTY, None),
            ("   ", EMPTY, None),
            (" us-east-1", WHITESPACE, Some("us-east-1")),
            ("us-east-1\n", WHITESPACE, Some("us-east-1")),
            ("aws-global", PSEUDO_REGION, Some("us-east-1")),
            ("aws-cn-global", PSEUDO_REGION, Some("cn-north-1")),
            ("aws-us-gov-global", PSEUDO_REGION, Some("us-gov-west-1")),
            ("aws-iso-global", PSEUDO_REGION, None),
            ("aws-iso-b-global", PSEUDO_REGION, None),
            ("AWS-GLOBAL", PSEUDO_REGION, Some("us-east-1")),
            ("fips-us-east-1", FIPS_PSEUDO_REGION, Some("us-east-1")),
            (
                "us-gov-west-1-fips",
                FIPS_PSEUDO_REGION,
                Some("us-gov-west-1"),
            ),
            ("US-EAST-1", UPPERCASE, Some("us-east-1")),
            ("us-East-1", UPPERCASE, Some("us-east-1")),
            ("EU-NRTH-1", UPPERCASE, Some("eu-north-1")),
            ("us-éast-1", NON_ASCII, Some("us-east-1")),
            ("eu-nrth-1", MISSPELT_DIRECTION, Some("eu-north-1")),
            ("us-esat-1", MISSPELT_DIRECTION, Some("us-east-1")),
            ("ap-southest-1", MISSPELT_DIRECTION, Some("ap-southeast-1")),
            ("eu-centre-1", MISSPELT_DIRECTION, Some("eu-central-1")),
            ("af-nrth-1", MISSPELT_DIRECTION, None),
            ("us-gov-1", PARTITION_ONLY, None),
            ("us-east-1a", AVAILABILITY_ZONE, Some("us-east-1")),
            ("eu-central-2c", AVAILABILITY_ZONE, Some("eu-central-2")),
            ("us-east-9a", AVAILABILITY_ZONE, None),
            ("us-west-2-lax-1a", LOCAL_ZONE, Some("us-west-2")),
            ("us-east-1-wl1-bos-wlz-1", LOCAL_ZONE, Some("us-east-1")),
            ("use1-az1", AVAILABILITY_ZONE_ID, None),
            ("us_east_1", BAD_SHAPE, Some("us-east-1")),
            ("useast1", BAD_SHAPE, Some("us-east-1")),
            ("us-east1", BAD_SHAPE, Some("us-east-1")),
            ("us-east-", BAD_SHAPE, Some("us-east-1")),
            ("-east-1", BAD_SHAPE, Some("us-east-1")),
            ("ue-west-1", BAD_SHAPE, Some("us-west-1")),
            ("euwest-1", BAD_SHAPE, Some("eu-west-1")),
            ("eu-wset-1", MISSPELT_DIRECTION, Some("eu-west-1")),
            ("us-gv-west-1", BAD_SHAPE, Some("us-gov-west-1")),
            ("apiso-centralnorth-2r", BAD_SHAPE, None),
            ("global", BAD_SHAPE, None),
            ("us-east-1-", BAD_SHAPE, Some("us-east-1")),
        ];
        for &(code, why, hint) in cases {
            assert_eq!(
                check_region(code),
                RegionCheck::Invalid { why, hint },
                "{code:?}"
            );
        }
    }

    #[test]
    fn partition_of_is_shape_only() {
        let cases = [
            ("us-gov-west-1", Some("aws-us-gov")),
            ("us-gov-east-7", Some("aws-us-gov")),
            ("us-isob-east-1", Some("aws-iso-b")),
            ("eusc-de-east-1", Some("aws-eusc")),
            ("eusc-fr-east-1", None),
            ("cn-south-1", Some("aws-cn")),
            ("us-gov-1", Some("aws")),
            ("eu-nrth-1", Some("aws")),
            ("us-EAST-1", Some("aws")),
            ("us-east_x-1", Some("aws")),
            ("US-EAST-1", None),
            ("aws-global", None),
            ("us-east-1a", None),
            ("us--1", None),
            ("us-east-", None),
            ("", None),
        ];
        for (code, partition) in cases {
            assert_eq!(partition_of(code), partition, "{code:?}");
        }
    }

    #[test]
    fn global_region_per_partition() {
        let cases = [
            ("aws", Some("us-east-1")),
            ("aws-cn", Some("cn-north-1")),
            ("aws-us-gov", Some("us-gov-west-1")),
            ("aws-iso", None),
            ("aws-iso-b", None),
            ("aws-iso-e", None),
            ("aws-iso-f", None),
            ("aws-eusc", None),
            ("", None),
            ("AWS", None),
        ];
        for (partition, region) in cases {
            assert_eq!(global_region(partition), region, "{partition:?}");
        }
    }

    #[test]
    fn levenshtein_distances() {
        let cases = [
            ("", "", 0),
            ("", "abc", 3),
            ("abc", "", 3),
            ("kitten", "sitting", 3),
            ("eu-nrth-1", "eu-north-1", 1),
            ("us-esat-1", "us-east-1", 2),
            ("us-éast-1", "us-east-1", 1),
        ];
        for (a, b, distance) in cases {
            assert_eq!(levenshtein(a, b), distance, "{a:?} {b:?}");
            assert_eq!(levenshtein(b, a), distance, "{b:?} {a:?}");
        }
    }

    /// Consistency of any result, whatever the input.
    fn assert_consistent(code: &str) {
        match check_region(code) {
            RegionCheck::Known { partition } => {
                assert!(KNOWN_REGIONS.contains(&code), "{code:?}");
                assert_eq!(partition_of(code), Some(partition), "{code:?}");
            }
            RegionCheck::UnknownWellFormed { partition, hint } => {
                assert!(!KNOWN_REGIONS.contains(&code), "{code:?}");
                assert_eq!(partition_of(code), Some(partition), "{code:?}");
                assert_eq!(hint, None, "{code:?}");
            }
            RegionCheck::Invalid { why, hint } => {
                assert!(!KNOWN_REGIONS.contains(&code), "{code:?}");
                assert!(!why.is_empty());
                if let Some(hint) = hint {
                    assert!(KNOWN_REGIONS.contains(&hint), "{code:?} -> {hint}");
                }
            }
        }
    }

    #[test]
    fn odd_input_never_panics() {
        let long = "us-east-1".repeat(10_000);
        let odd = [
            "-",
            "--",
            "---",
            "\0",
            "é",
            "ÉÉÉ",
            "🦀-east-1",
            "us-east-1🦀",
            "us-🦀-1",
            "us-east-١",
            "-global",
            "fips-",
            "-fips",
            "-az",
            "-az1",
            "a-b-c-d-e-1",
            long.as_str(),
        ];
        for code in odd {
            assert_consistent(code);
        }
    }

    #[test]
    fn short_strings_and_near_misses_are_consistent() {
        let alphabet = ['u', 's', 'e', '-', '1', '_', 'A', 'é', ' '];
        let mut codes = vec![String::new()];
        for _ in 0..4 {
            let longer: Vec<String> = codes
                .iter()
                .flat_map(|code| alphabet.iter().map(move |c| format!("{code}{c}")))
                .collect();
            codes.extend(longer);
        }
        // Every single-char deletion and substitution of every known region.
        for region in KNOWN_REGIONS {
            let chars: Vec<char> = region.chars().collect();
            for i in 0..chars.len() {
                let mut deleted = chars.clone();
                deleted.remove(i);
                codes.push(deleted.into_iter().collect());
                for c in ['x', 'A', '-', '9', 'é'] {
                    let mut substituted = chars.clone();
                    substituted[i] = c;
                    codes.push(substituted.into_iter().collect());
                }
            }
        }
        for code in &codes {
            assert_consistent(code);
        }
    }
}
