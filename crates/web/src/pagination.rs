//! `page`/`limit` checking and the list envelope `{data, pagination}`.

use serde::Serialize;
use utoipa::ToSchema;

use crate::error::ApiError;

/// A checked page request: `page` from 1, `limit` from 1 to [`Page::MAX_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// The page number, from 1.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
}

impl Page {
    /// The limit when none is asked for.
    pub const DEFAULT_LIMIT: u32 = 20;
    /// The largest limit; more is a 400, not silently clamped.
    pub const MAX_LIMIT: u32 = 100;

    /// Checks the query's `page` and `limit`.
    pub fn new(page: Option<u32>, limit: Option<u32>) -> Result<Self, ApiError> {
        let page = page.unwrap_or(1);
        let limit = limit.unwrap_or(Self::DEFAULT_LIMIT);
        if page == 0 {
            return Err(ApiError::invalid_field("page", "must be 1 or more"));
        }
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::invalid_field(
                "limit",
                format!("must be between 1 and {}", Self::MAX_LIMIT),
            ));
        }
        Ok(Self { page, limit })
    }

    /// Rows to skip.
    pub fn offset(&self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.limit)
    }

    /// The limit as SQL wants it.
    pub fn limit_i64(&self) -> i64 {
        i64::from(self.limit)
    }

    /// Wraps one page of rows with the counts.
    pub fn wrap<T>(self, data: Vec<T>, total: i64) -> Paginated<T> {
        let total = total.max(0);
        let limit = i64::from(self.limit);
        Paginated {
            data,
            pagination: PageInfo {
                page: self.page,
                limit: self.limit,
                total,
                pages: (total + limit - 1) / limit,
                total_is_lower_bound: false,
            },
        }
    }

    /// How many matches a list over a large table counts at most: [`Page::COUNT_CAP`], or
    /// up to the end of this page when that is further, plus one (to tell "exactly the cap"
    /// from "more"). Counting every match of a million rows costs more than the page.
    pub fn count_cap(&self) -> i64 {
        self.cap_from(Self::COUNT_CAP)
    }

    /// The cap for lists whose every candidate row costs a check the index cannot answer
    /// (full-text search): five pages ahead of this one, at least [`Page::SEARCH_COUNT_CAP`]
    /// and at most [`Page::COUNT_CAP`] (or the end of this page, when that is further).
    /// Counting a thousand matches of a mid-frequency word means checking tens of thousands
    /// of rows; counting what the next pages need does not.
    pub fn search_count_cap(&self) -> i64 {
        let ahead = self.offset() + 5 * self.limit_i64();
        self.cap_from(ahead.clamp(Self::SEARCH_COUNT_CAP, Self::COUNT_CAP))
    }

    fn cap_from(&self, floor: i64) -> i64 {
        floor.max(self.offset() + self.limit_i64()) + 1
    }

    /// Counts stop here (see [`Page::count_cap`]).
    pub const COUNT_CAP: i64 = 1000;

    /// Searches count at least this far (see [`Page::search_count_cap`]).
    pub const SEARCH_COUNT_CAP: i64 = 100;

    /// Wraps a page whose matches were counted up to `cap` ([`Page::count_cap`] or
    /// [`Page::search_count_cap`]): a count that reached the cap is reported as a lower bound.
    pub fn wrap_capped<T>(self, data: Vec<T>, counted: i64, cap: i64) -> Paginated<T> {
        if counted < cap {
            return self.wrap(data, counted);
        }
        let mut out = self.wrap(data, cap - 1);
        out.pagination.total_is_lower_bound = true;
        out
    }
}

/// Where a page sits in the whole list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PageInfo {
    /// This page, from 1.
    pub page: u32,
    /// Items per page.
    pub limit: u32,
    /// Items in the whole list.
    pub total: i64,
    /// Pages in the whole list.
    pub pages: i64,
    /// Present and `true` when the list has more items than `total` (long lists are counted
    /// only so far); page on until a page comes back short.
    #[serde(
        rename = "totalIsLowerBound",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub total_is_lower_bound: bool,
}

/// A page of a list.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Paginated<T> {
    /// The items of this page.
    pub data: Vec<T>,
    /// Where this page sits.
    pub pagination: PageInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_range_are_refused_not_clamped() {
        assert_eq!(Page::new(None, None).unwrap(), Page { page: 1, limit: 20 });
        assert_eq!(
            Page::new(Some(0), None).unwrap_err().problem().errors[0].field,
            "page"
        );
        assert_eq!(
            Page::new(None, Some(101)).unwrap_err().problem().errors[0].field,
            "limit"
        );
        assert_eq!(
            Page::new(None, Some(0)).unwrap_err().problem().errors[0].field,
            "limit"
        );
        assert_eq!(Page::new(Some(3), Some(10)).unwrap().offset(), 20);
    }

    #[test]
    fn pages_round_up() {
        let p = Page::new(Some(1), Some(10)).unwrap();
        assert_eq!(p.wrap(vec![1], 21).pagination.pages, 3);
        assert_eq!(p.wrap(Vec::<i32>::new(), 0).pagination.pages, 0);
    }

    #[test]
    fn searches_count_five_pages_ahead_within_the_bounds() {
        let page = |n, l| Page::new(Some(n), Some(l)).unwrap();
        assert_eq!(page(1, 20).count_cap(), 1001);
        assert_eq!(page(1, 20).search_count_cap(), 101, "at least 100");
        assert_eq!(
            page(3, 50).search_count_cap(),
            351,
            "five pages past page 2"
        );
        assert_eq!(
            page(30, 100).search_count_cap(),
            3001,
            "never short of this page"
        );
        assert_eq!(
            page(8, 100).search_count_cap(),
            1001,
            "at most the list cap"
        );
        let capped = page(1, 20).wrap_capped(vec![1], 101, 101).pagination;
        assert_eq!((capped.total, capped.total_is_lower_bound), (100, true));
        let exact = page(1, 20).wrap_capped(vec![1], 100, 101).pagination;
        assert_eq!((exact.total, exact.total_is_lower_bound), (100, false));
    }
}
