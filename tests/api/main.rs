//! Integration tests: the real router against a real Postgres (and Redis where noted).

#![allow(clippy::unwrap_used)]

mod api_keys;
mod audit_logs;
mod authentication;
mod broker;
mod catalog;
mod claim_plans;
mod connections;
mod custom_roles;
mod document;
mod embedded_db;
mod errors;
mod helpers;
mod hostile;
mod idempotency;
mod indexes;
mod isolation;
mod list_filters;
mod locked_broker;
mod materials;
mod mqtt;
mod mqtt_access;
mod openapi;
mod ops;
mod orders;
mod permissions;
mod print_jobs;
mod printer_commands;
mod printers;
mod quotas;
mod rate_limits;
mod receiver;
mod replicas;
mod request_examples;
mod roles_and_store;
mod sessions;
mod smtp;
mod telemetry;
mod tenancy;
mod tls;
mod users;
mod webhooks;
