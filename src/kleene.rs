//! Three-valued (Kleene) logic, for rules that decide what they can on part of a record:
//! `None` is "unknown". Both functions stop at the first answer that settles them.

/// False if any is false; else unknown if any is unknown; else true.
pub fn all(items: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    let mut known = true;
    for v in items {
        match v {
            Some(false) => return Some(false),
            None => known = false,
            Some(true) => {}
        }
    }
    known.then_some(true)
}

/// True if any is true; else unknown if any is unknown; else false.
pub fn any(items: impl IntoIterator<Item = Option<bool>>) -> Option<bool> {
    all(items.into_iter().map(|v| v.map(|b| !b))).map(|b| !b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_survives_only_where_nothing_settles_it() {
        let (t, f, u) = (Some(true), Some(false), None);
        assert_eq!(all([t, t]), t);
        assert_eq!(all([t, u]), u);
        assert_eq!(all([u, f]), f);
        assert_eq!(all([]), t);
        assert_eq!(any([f, f]), f);
        assert_eq!(any([f, u]), u);
        assert_eq!(any([u, t]), t);
        assert_eq!(any([]), f);
    }

    #[test]
    fn both_stop_at_the_settling_answer() {
        let mut seen = 0;
        let _ = all([Some(true), Some(false), Some(true)]
            .into_iter()
            .inspect(|_| seen += 1));
        assert_eq!(seen, 2);
        seen = 0;
        let _ = any([None, Some(true), None].into_iter().inspect(|_| seen += 1));
        assert_eq!(seen, 2);
    }
}
