// @generated automatically by Diesel CLI.

diesel::table! {
    session_events (id) {
        id -> BigInt,
        at -> Timestamp,
        session_id -> Text,
        user_id -> Nullable<Text>,
        kind -> Text,
        actor -> Text,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        data -> Text,
        expires_at -> Timestamp,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        version -> BigInt,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        last_seen_at -> Nullable<Timestamp>,
        timeout_seconds -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(session_events, sessions,);
