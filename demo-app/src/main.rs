//! `cargo run -p demo-app`: serves the session demo (port 8000 by default,
//! SQLite `db.sqlite` in the working directory unless `ROCKET_SESSION` says otherwise).

#![forbid(unsafe_code)]

#[rocket::main]
async fn main() -> anyhow::Result<()> {
    if let Err(error) = demo_app::rocket().launch().await {
        // Rocket has logged the details; this marks the error handled and names it.
        anyhow::bail!("demo-app did not start: {}", error.pretty_print());
    }
    Ok(())
}
