//! The purchase form: the field `msg` and the user id built from it.

use std::fmt;

use crate::keys;
use crate::responses::Cause;

/// The content type of an HTML form post, and of `ab -T`.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The largest body read; anything longer is refused unread.
pub const MAX_BODY_BYTES: usize = 4096;

/// The longest id accepted, after trimming.
pub const MAX_ID_BYTES: usize = 64;

/// Why a form was refused; each becomes a 4xx with a JSON error.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    TooLarge,
    /// The body did not arrive within --body-timeout.
    TooSlow,
    Unreadable(String),
    NotForm(String),
    NotUtf8,
    NoMsg,
    Blank,
    TooLong(usize),
    ControlCharacter,
    Reserved,
}

impl FormError {
    pub fn status(&self) -> u16 {
        match self {
            FormError::TooLarge => 413,
            FormError::TooSlow => 408,
            FormError::NotForm(_) => 415,
            _ => 400,
        }
    }

    pub fn cause(&self) -> Cause {
        match self {
            FormError::TooSlow => Cause::Timeout,
            _ => Cause::BadRequest,
        }
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::TooLarge => write!(f, "the body is larger than {MAX_BODY_BYTES} bytes"),
            FormError::TooSlow => write!(f, "the body took too long to arrive"),
            FormError::Unreadable(err) => write!(f, "the body could not be read: {err}"),
            FormError::NotForm(got) => write!(
                f,
                "the body must be a form: send the header `Content-Type: {FORM_CONTENT_TYPE}` \
                 (with ab: -T {FORM_CONTENT_TYPE}); got {got}"
            ),
            FormError::NotUtf8 => write!(f, "the form is not valid UTF-8"),
            FormError::NoMsg => write!(f, "the form has no field `msg`: send msg=<your id>"),
            FormError::Blank => write!(f, "the field `msg` is blank: send msg=<your id>"),
            FormError::TooLong(len) => write!(
                f,
                "the field `msg` is {len} bytes long; the most is {MAX_ID_BYTES}"
            ),
            FormError::ControlCharacter => {
                write!(
                    f,
                    "the field `msg` holds a control character (a line break?)"
                )
            }
            FormError::Reserved => write!(
                f,
                "the id `{}` marks the empty set of winners and cannot buy",
                keys::SENTINEL
            ),
        }
    }
}

/// The buyer's base id from a form body.
/// Python: baseid = request.form.get('msg', type=str).strip()
pub fn base_id(content_type: Option<&str>, body: &[u8]) -> Result<String, FormError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(FormError::TooLarge);
    }
    if body.is_empty() {
        return Err(FormError::NoMsg);
    }
    let media_type = content_type.map(|value| value.split(';').next().unwrap_or("").trim());
    if !media_type.is_some_and(|media| media.eq_ignore_ascii_case(FORM_CONTENT_TYPE)) {
        return Err(FormError::NotForm(
            content_type.map_or("no Content-Type".to_string(), |value| format!("`{value}`")),
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(FormError::NotUtf8);
    }
    let (_, msg) = form_urlencoded::parse(body)
        .find(|(name, _)| name == "msg")
        .ok_or(FormError::NoMsg)?;
    // The decoder replaces bytes that are not UTF-8, such as %FF, with U+FFFD.
    if msg.contains(char::REPLACEMENT_CHARACTER) {
        return Err(FormError::NotUtf8);
    }
    let id = msg.trim();
    if id.is_empty() {
        return Err(FormError::Blank);
    }
    if id.len() > MAX_ID_BYTES {
        return Err(FormError::TooLong(id.len()));
    }
    if id.chars().any(char::is_control) {
        return Err(FormError::ControlCharacter);
    }
    Ok(id.to_string())
}

/// The id the purchase is made for: the base id and a random number, so one
/// postfile under ab stands for many buyers.
/// Python: userid = baseid + str(random.randint(0, 100000))
pub fn user_id(base_id: &str, suffix_max: u32) -> Result<String, FormError> {
    let id = if suffix_max == 0 {
        base_id.to_string()
    } else {
        format!("{base_id}{}", fastrand::u32(0..=suffix_max))
    };
    if id == keys::SENTINEL {
        return Err(FormError::Reserved);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const FORM: Option<&str> = Some(FORM_CONTENT_TYPE);

    #[test]
    fn trims_the_postfile_newline() {
        assert_eq!(base_id(FORM, b"msg=%23ABCD\n"), Ok("#ABCD".to_string()));
        assert_eq!(base_id(FORM, b"msg=+Ann+Lee+"), Ok("Ann Lee".to_string()));
    }

    #[test]
    fn accepts_the_content_type_with_parameters() {
        let ct = Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8");
        assert_eq!(base_id(ct, b"a=1&msg=x&msg=y"), Ok("x".to_string()));
    }

    #[test]
    fn refuses_what_is_not_a_usable_id() {
        assert_eq!(base_id(FORM, b""), Err(FormError::NoMsg));
        assert_eq!(base_id(FORM, b"user=ann"), Err(FormError::NoMsg));
        assert_eq!(base_id(FORM, b"msg=%20%0A"), Err(FormError::Blank));
        assert_eq!(
            base_id(FORM, b"msg=a%0Ab"),
            Err(FormError::ControlCharacter)
        );
        assert_eq!(base_id(FORM, b"msg=%FF"), Err(FormError::NotUtf8));
        assert_eq!(base_id(FORM, b"msg=\xff"), Err(FormError::NotUtf8));
        let long = format!("msg={}", "x".repeat(MAX_ID_BYTES + 1));
        assert_eq!(
            base_id(FORM, long.as_bytes()),
            Err(FormError::TooLong(MAX_ID_BYTES + 1))
        );
        let exact = format!("msg={}", "x".repeat(MAX_ID_BYTES));
        assert!(base_id(FORM, exact.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_bodies_that_are_not_forms_or_too_large() {
        let err = base_id(Some("text/plain"), b"msg=x").unwrap_err();
        assert_eq!(err.status(), 415);
        assert!(
            err.to_string()
                .contains("-T application/x-www-form-urlencoded")
        );
        assert_eq!(base_id(None, b"msg=x").unwrap_err().status(), 415);
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(base_id(FORM, &big), Err(FormError::TooLarge));
    }

    #[test]
    fn suffix_stays_within_its_range() {
        assert_eq!(user_id("ann", 0), Ok("ann".to_string()));
        for _ in 0..200 {
            let id = user_id("ann", 3).unwrap();
            let suffix: u32 = id.strip_prefix("ann").unwrap().parse().unwrap();
            assert!(suffix <= 3, "{id}");
        }
        assert_eq!(user_id(keys::SENTINEL, 0), Err(FormError::Reserved));
    }

    proptest! {
        #[test]
        fn whatever_is_sent_an_accepted_id_is_clean(
            body in prop_oneof![
                any::<Vec<u8>>(),
                "msg=\\PC{0,80}".prop_map(String::into_bytes),
                "msg=(%[0-9a-fA-F]{2}|[ -~]){0,70}".prop_map(String::into_bytes),
            ],
            content_type in prop::option::of("\\PC{0,60}"),
        ) {
            if let Ok(id) = base_id(content_type.as_deref(), &body) {
                prop_assert_eq!(id.trim(), id.as_str());
                prop_assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES);
                prop_assert!(!id.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER));
                prop_assert!(body.len() <= MAX_BODY_BYTES);
            }
        }
    }
}
