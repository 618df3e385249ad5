//! vigil-fhir integration tests: mapping without a server, then upload, faults and auth
//! against the real Medplum FHIR server on loopback (tests/fhir-server, spawned per test;
//! run `npm ci` there first).

mod auth;
mod delivery;
mod faults;
mod mapping;
mod phd;
mod mock;
mod support;
mod tls;
mod upload;
