//! Property tests: the session line parser is total and faithful, and resolution never
//! panics on arbitrary file contents.

use entwurf_v2_spawn::GardenId;
use entwurf_v2_spawn::production::identity::{
    ModelChangeLine, ProviderField, SessionHeader, SessionLine, parse_session_line,
    resolve_launch_identity,
};
use entwurf_v2_spawn::resume_args::PassthroughArgs;
use proptest::prelude::*;

/// Strings that look like session lines, to reach deep into the parser, plus noise.
fn line_like() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        r#"\{"type":"(session|model_change|message)"(,"(id|cwd|provider|modelId)":("[ -~]{0,12}"|[0-9]{1,3}|null|\[\]|\{\}|true)){0,5}\}?"#,
        r#"[ \t]*[\{\[]"?[a-zA-Z_":,\{\}\[\] 0-9\\]{0,40}"#,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn the_line_parser_never_panics(line in line_like()) {
        let parsed = parse_session_line(&line);
        // Anything not starting with `{` is never taken for a header or model change.
        if !line.trim_start().starts_with('{') {
            prop_assert_eq!(parsed, SessionLine::Invalid);
        }
    }

    #[test]
    fn a_serialized_header_parses_back(id in any::<String>(), cwd in any::<String>()) {
        let line = serde_json::json!({"type": "session", "version": 3, "id": id, "cwd": cwd}).to_string();
        prop_assert_eq!(
            parse_session_line(&line),
            SessionLine::Header(SessionHeader { id: Some(id), cwd: Some(cwd) })
        );
    }

    #[test]
    fn a_serialized_model_change_parses_back(provider in "[ -~]{1,16}", model in "[ -~]{1,16}") {
        let line = serde_json::json!({"type": "model_change", "provider": provider, "modelId": model}).to_string();
        prop_assert_eq!(
            parse_session_line(&line),
            SessionLine::ModelChange(ModelChangeLine {
                provider: ProviderField::Named(provider),
                model: Some(model),
            })
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn resolution_never_panics_on_arbitrary_files(
        files in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..256), 1..4),
        prefix_with_header in any::<bool>(),
    ) {
        let gid = GardenId::parse("20260613T000000-aaaaaa").unwrap();
        let agent = tempfile::tempdir().unwrap();
        let dir = agent.path().join("sessions/d");
        std::fs::create_dir_all(&dir).unwrap();
        for (i, body) in files.iter().enumerate() {
            let mut bytes = Vec::new();
            if prefix_with_header {
                bytes.extend_from_slice(br#"{"type":"session","id":"20260613T000000-aaaaaa","cwd":"/w"}"#);
                bytes.push(b'\n');
            }
            bytes.extend_from_slice(body);
            std::fs::write(dir.join(format!("{i}.jsonl")), bytes).unwrap();
        }
        let result = resolve_launch_identity(agent.path(), &gid, &PassthroughArgs::default());
        if prefix_with_header && files.len() > 1 {
            let is_ambiguous = matches!(
                result,
                Err(entwurf_v2_spawn::production::identity::IdentityError::Ambiguous { .. })
            );
            prop_assert!(is_ambiguous, "{:?}", result);
        }
    }
}
