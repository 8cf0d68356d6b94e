//! Fresh neo4j-backed stores for the behaviour suites (being written).
