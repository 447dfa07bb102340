//! A client library for the exchange's SoupBinTCP ports.
