//! netwar core.
