//! Fresh redis-backed stores for the behaviour suites (being written).
