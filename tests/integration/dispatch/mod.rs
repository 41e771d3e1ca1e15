//! Dispatch (§18): the deterministic gate over fakes (`hand.rs`: the order, the table,
//! the receipt rule and every send-hand path, with deliveries, probes and releases
//! counted) and the REAL client and production wiring against real unix sockets
//! (`wire.rs`).

mod hand;
mod wire;
