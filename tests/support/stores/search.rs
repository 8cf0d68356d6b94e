//! Fresh search-backed stores for the behaviour suites (being written).
