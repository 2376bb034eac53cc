//! Diesel schema of the tables every service database carries (`migrations/` in this crate).

diesel::table! {
    outbox (seq) {
        seq -> BigInt,
        id -> Text,
        aggregate -> Text,
        routing_key -> Text,
        payload -> Text,
        sensitive -> Integer,
        created_at -> Timestamp,
        claimed_by -> Nullable<Text>,
        claim_expires -> Nullable<Timestamp>,
        attempts -> Integer,
        last_error -> Nullable<Text>,
        sent_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    processed_events (consumer, event_id) {
        consumer -> Text,
        event_id -> Text,
        processed_at -> Timestamp,
    }
}

diesel::table! {
    bus_bindings (queue, pattern) {
        queue -> Text,
        pattern -> Text,
    }
}

diesel::table! {
    bus_messages (seq) {
        seq -> BigInt,
        queue -> Text,
        message_id -> Text,
        routing_key -> Text,
        payload -> Text,
        attempts -> Integer,
        available_at -> Timestamp,
        dead -> Integer,
        last_error -> Nullable<Text>,
    }
}
