//! The purchase form: the field `msg` and the user id built from it.

use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::http::Cause;
use crate::keys;

/// The content type of an HTML form post, and of `ab -T`.
pub const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded";

/// The largest body read; anything longer is refused unread.
pub const MAX_BODY_BYTES: usize = 4096;

/// The longest id accepted, after trimming.
pub const MAX_ID_BYTES: usize = 64;

/// Why a form was refused: a 4xx status, and words that say what to send.
#[derive(Debug, PartialEq, Eq)]
pub struct FormError {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> FormError {
    let message = message.into();
    FormError { status, message }
}

impl FormError {
    /// A declared or read body over `MAX_BODY_BYTES`.
    pub fn too_large() -> FormError {
        refuse(
            413,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    }

    /// A body that did not arrive within --body-timeout.
    pub fn too_slow() -> FormError {
        refuse(408, "the body took too long to arrive")
    }

    pub fn unreadable(err: std::io::Error) -> FormError {
        refuse(400, format!("the body could not be read: {err}"))
    }

    pub fn cause(&self) -> Cause {
        if self.status == 408 {
            Cause::Timeout
        } else {
            Cause::BadRequest
        }
    }
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// The buyer's base id from a form body.
/// Python: baseid = request.form.get('msg', type=str).strip()
pub fn base_id(content_type: Option<&str>, body: &[u8]) -> Result<String, FormError> {
    let send_msg = |what: &str| refuse(400, format!("the {what}: send msg=<your id>"));
    if body.len() > MAX_BODY_BYTES {
        return Err(FormError::too_large());
    }
    let media_type = content_type.map(|value| value.split(';').next().unwrap_or("").trim());
    if !body.is_empty()
        && !media_type.is_some_and(|media| media.eq_ignore_ascii_case(FORM_CONTENT_TYPE))
    {
        let got = content_type.map_or("no Content-Type".to_string(), |value| format!("`{value}`"));
        return Err(refuse(
            415,
            format!(
                "the body must be a form: send the header `Content-Type: {FORM_CONTENT_TYPE}` \
             (with ab: -T {FORM_CONTENT_TYPE}); got {got}"
            ),
        ));
    }
    let not_utf8 = || refuse(400, "the form is not valid UTF-8");
    std::str::from_utf8(body).map_err(|_| not_utf8())?;
    let (_, msg) = form_urlencoded::parse(body)
        .find(|(name, _)| name == "msg")
        .ok_or_else(|| send_msg("form has no field `msg`"))?;
    // The decoder replaces bytes that are not UTF-8, such as %FF, with U+FFFD.
    if msg.contains(char::REPLACEMENT_CHARACTER) {
        return Err(not_utf8());
    }
    let id = msg.trim();
    if id.is_empty() {
        return Err(send_msg("field `msg` is blank"));
    }
    if id.len() > MAX_ID_BYTES {
        let too_long = format!(
            "the field `msg` is {} bytes long; the most is {MAX_ID_BYTES}",
            id.len()
        );
        return Err(refuse(400, too_long));
    }
    let after = std::iter::once(None).chain(id.chars().map(Some));
    if let Some((unseen, _)) = id.chars().zip(after).find(|&(c, before)| hidden(c, before)) {
        let code = format!("U+{:04X}", u32::from(unseen));
        let what = if unseen.is_control() {
            format!("a control character ({code}), a line break?")
        } else {
            format!(
                "an invisible or direction-changing character ({code}), which makes an id \
                 read as another in the log and the winners"
            )
        };
        return Err(refuse(
            400,
            format!("the field `msg` holds {what}; send the id without it"),
        ));
    }
    Ok(id.to_string())
}

/// Whether no id may hold `c`, as it cannot be seen or turns the text
/// around it, by its general category: Cc (controls), Cf (format: zero-width
/// spaces, U+202E and the other direction marks, the byte order mark) and
/// the separators Zl and Zp (U+2028, U+2029); and the characters Unicode
/// says to show as nothing (Default_Ignorable_Code_Point): variation
/// selectors, the combining grapheme joiner, the Hangul fillers (U+3164
/// alone looks blank), tags. `alice` and `alice` + U+FE00 print alike.
/// Letters, marks, digits and symbols of any script stay welcome, and so
/// does a variation selector where it selects something `before` it: an
/// emoji's presentation (❤ U+FE0F) after a symbol, an ideograph's form
/// (U+E0100 and on) after a letter of a script without case. U+200D, which
/// joins emoji into one (woman, U+200D, laptop: a woman technologist), is Cf
/// and refused too: between letters it is as unseen as U+200B. The emoji it
/// joins are welcome one by one.
fn hidden(c: char, before: Option<char>) -> bool {
    let selects = |category| before.is_some_and(|b| b.general_category() == category);
    match u32::from(c) {
        0xFE00..=0xFE0F if selects(GeneralCategory::OtherSymbol) => return false,
        0xE0100..=0xE01EF if selects(GeneralCategory::OtherLetter) => return false,
        _ => {}
    }
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    ) || DEFAULT_IGNORABLE
        .iter()
        .any(|range| range.contains(&u32::from(c)))
}

/// Default_Ignorable_Code_Point, from Unicode 15.1's DerivedCoreProperties.txt
/// (those of category Cf are refused by their category already).
const DEFAULT_IGNORABLE: [std::ops::RangeInclusive<u32>; 17] = [
    0x00AD..=0x00AD,
    0x034F..=0x034F,
    0x061C..=0x061C,
    0x115F..=0x1160,
    0x17B4..=0x17B5,
    0x180B..=0x180F,
    0x200B..=0x200F,
    0x202A..=0x202E,
    0x2060..=0x206F,
    0x3164..=0x3164,
    0xFE00..=0xFE0F,
    0xFEFF..=0xFEFF,
    0xFFA0..=0xFFA0,
    0xFFF0..=0xFFF8,
    0x1BCA0..=0x1BCA3,
    0x1D173..=0x1D17A,
    0xE0000..=0xE0FFF,
];

/// The id the purchase is made for: the base id and a random number, so one
/// postfile under ab stands for many buyers.
/// Python: userid = baseid + str(random.randint(0, 100000))
pub fn user_id(base_id: &str, suffix_max: u32) -> Result<String, FormError> {
    let id = if suffix_max == 0 {
        base_id.to_string()
    } else {
        format!("{base_id}{}", fastrand::u32(0..=suffix_max))
    };
    if id == keys::PLACEHOLDER {
        let placeholder = keys::PLACEHOLDER;
        return Err(refuse(
            400,
            format!("the id `{placeholder}` marks the empty set of winners and cannot buy"),
        ));
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

    /// The status and words of a refused form.
    fn refused(content_type: Option<&str>, body: &[u8]) -> (u16, String) {
        let err = base_id(content_type, body).unwrap_err();
        (err.status, err.message)
    }

    #[test]
    fn refuses_what_is_not_a_usable_id() {
        for (body, says) in [
            (&b""[..], "no field `msg`"),
            (b"user=ann", "no field `msg`"),
            (b"msg=%20%0A", "blank"),
            (b"msg=a%0Ab", "control character"),
            (b"msg=%FF", "not valid UTF-8"),
            (b"msg=\xff", "not valid UTF-8"),
        ] {
            let (status, message) = refused(FORM, body);
            assert_eq!(status, 400, "{message}");
            assert!(message.contains(says), "{message}");
        }
        let long = format!("msg={}", "x".repeat(MAX_ID_BYTES + 1));
        let (_, message) = refused(FORM, long.as_bytes());
        assert!(
            message.contains("65 bytes long; the most is 64"),
            "{message}"
        );
        let exact = format!("msg={}", "x".repeat(MAX_ID_BYTES));
        assert!(base_id(FORM, exact.as_bytes()).is_ok());
    }

    #[test]
    fn refuses_ids_with_unseen_or_direction_changing_characters() {
        for (id, code) in [
            ("al\u{200B}ice", "U+200B"),
            ("\u{202E}ecila", "U+202E"),
            ("ann\u{2028}lee", "U+2028"),
            ("ann\u{2029}lee", "U+2029"),
            ("al\u{200D}ice", "U+200D"),
            ("\u{FEFF}alice", "U+FEFF"),
            ("al\u{00AD}ice", "U+00AD"),
            ("ann\u{2066}lee", "U+2066"),
            ("\u{1F469}\u{200D}\u{1F4BB}", "U+200D"),
            // Shown as nothing: "alice" five times over, and a blank.
            ("alice\u{034F}", "U+034F"),
            ("alice\u{FE00}", "U+FE00"),
            ("alice\u{180B}", "U+180B"),
            ("alice\u{E0100}", "U+E0100"),
            ("\u{3164}", "U+3164"),
        ] {
            let body = format!("msg={id}");
            let (status, message) = refused(FORM, body.as_bytes());
            assert_eq!(status, 400, "{id:?}: {message}");
            let says = format!("an invisible or direction-changing character ({code})");
            assert!(message.contains(&says), "{id:?}: {message}");
        }
        let (_, message) = refused(FORM, b"msg=a%0Ab");
        assert!(message.contains("control character (U+000A)"), "{message}");
        let (_, message) = refused(FORM, b"msg=a%C2%85b");
        assert!(message.contains("control character (U+0085)"), "{message}");
    }

    #[test]
    fn welcomes_ids_in_any_script() {
        for id in [
            "张伟",
            "محمد",
            "Анна",
            "José Zoë",
            "नमस्ते",
            "שרה",
            "🎉",
            "❤\u{FE0F}",
            "葛\u{E0100}",
            "👍🏽",
            "🇨🇳",
            "#ABCD",
        ] {
            let body = format!("msg={id}");
            assert_eq!(base_id(FORM, body.as_bytes()), Ok(id.to_string()));
        }
    }

    #[test]
    fn refuses_bodies_that_are_not_forms_or_too_large() {
        let (status, message) = refused(Some("text/plain"), b"msg=x");
        assert_eq!(status, 415);
        assert!(message.contains("-T application/x-www-form-urlencoded"));
        assert_eq!(refused(None, b"msg=x").0, 415);
        let big = vec![b'a'; MAX_BODY_BYTES + 1];
        assert_eq!(base_id(FORM, &big), Err(FormError::too_large()));
    }

    #[test]
    fn suffix_stays_within_its_range() {
        assert_eq!(user_id("ann", 0), Ok("ann".to_string()));
        for _ in 0..200 {
            let id = user_id("ann", 3).unwrap();
            let suffix: u32 = id.strip_prefix("ann").unwrap().parse().unwrap();
            assert!(suffix <= 3, "{id}");
        }
        assert_eq!(user_id(keys::PLACEHOLDER, 0).unwrap_err().status, 400);
    }

    proptest! {
        #[test]
        fn whatever_is_sent_an_accepted_id_is_clean(
            body in prop_oneof![
                any::<Vec<u8>>(),
                "msg=\\PC{0,80}".prop_map(String::into_bytes),
                "msg=(%[0-9a-fA-F]{2}|[ -~]){0,70}".prop_map(String::into_bytes),
                "msg=(\\p{L}|\\p{Cc}|\\p{Cf}|\\p{Zl}|\\p{Zp}|\\p{So}|[ a-z]){0,20}"
                    .prop_map(String::into_bytes),
            ],
            content_type in prop::option::of("\\PC{0,60}"),
        ) {
            if let Ok(id) = base_id(content_type.as_deref(), &body) {
                prop_assert_eq!(id.trim(), id.as_str());
                prop_assert!(!id.is_empty() && id.len() <= MAX_ID_BYTES);
                prop_assert!(!id.chars().any(|c| c.is_control() || c == char::REPLACEMENT_CHARACTER));
                let unseen = [
                    GeneralCategory::Control,
                    GeneralCategory::Format,
                    GeneralCategory::LineSeparator,
                    GeneralCategory::ParagraphSeparator,
                ];
                prop_assert!(!id.chars().any(|c| unseen.contains(&c.general_category())), "{:?}", id);
                prop_assert!(body.len() <= MAX_BODY_BYTES);
            }
        }
    }
}
