//! `[console]`: how an alert's console link opens the member account's CloudTrail event
//! history for someone who works from the security account (issue 30).

use serde::Deserialize;

use super::collector::Collector;

/// How the link is made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// The console URL of the event itself: it opens for whoever is signed in to the member
    /// account already.
    #[default]
    Direct,
    /// Through the IAM Identity Center access portal: it signs in to the alert's account
    /// with `role` (a permission set) and opens the event.
    IdentityCenter,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Console {
    #[serde(default)]
    pub link: Link,
    /// The access portal's URL: `https://d-1234567890.awsapps.com/start`.
    pub start_url: Option<String>,
    /// The permission set to sign in with: `SecurityAudit`.
    pub role: Option<String>,
}

/// Each key that does not fit the chosen `link`, reported at once.
pub(super) fn check(c: &mut Collector, con: &Console) {
    match con.link {
        Link::IdentityCenter => {
            match con.start_url.as_deref() {
                None => c.error(
                    "console.start_url",
                    "expected the access portal's URL, e.g. \"https://d-1234567890.awsapps.com/start\"",
                ),
                Some(u) if !u.starts_with("https://") => c.error(
                    "console.start_url",
                    format!("{u:?}: expected an https:// URL"),
                ),
                Some(_) => {}
            }
            match con.role.as_deref() {
                None => c.error(
                    "console.role",
                    "expected the permission set to sign in with, e.g. \"SecurityAudit\"",
                ),
                Some(r) if r.trim().is_empty() || r.contains(['/', '&', '#', '?']) => c.error(
                    "console.role",
                    format!("{r:?}: expected a permission set name"),
                ),
                Some(_) => {}
            }
        }
        Link::Direct => {
            for (key, v) in [("start_url", &con.start_url), ("role", &con.role)] {
                if v.is_some() {
                    c.error(
                        format!("console.{key}"),
                        "used only with link = \"identity-center\"",
                    );
                }
            }
        }
    }
}
