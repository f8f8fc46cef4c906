//! URLs as messages show them: never with a password.

/// `url` with any password in it replaced by `***`: what messages show.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_never_shown() {
        assert_eq!(
            redact("postgres://shop:s3cret@db.example:5432/orders"),
            "postgres://shop:***@db.example:5432/orders"
        );
        assert_eq!(redact("postgres://s:p@h"), "postgres://s:***@h");
        assert_eq!(redact("postgres://shop@h/db"), "postgres://shop@h/db");
        assert_eq!(redact("sqlite:orders.sqlite"), "sqlite:orders.sqlite");
        // An @ in the password does not show what follows it.
        assert_eq!(redact("postgres://u:p@ss@h/db"), "postgres://u:***@h/db");
    }
}
