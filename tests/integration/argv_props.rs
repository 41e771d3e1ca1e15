//! Property: the args a caller adds cannot change who is resumed. For any launch and
//! extension args the library accepts, the argv the production wiring builds parses
//! back to exactly the plan's variant, session id, provider, model and prompt (and the
//! added args, verbatim); every arg the rule refuses is refused on both ways in, naming
//! the arg, before anything could be spawned.

use std::path::Path;
use std::time::Duration;

use entwurf_v2_spawn::plan::PlanError;
use entwurf_v2_spawn::production::{ProductionDeps, ProductionOptions, fixed_identity};
use entwurf_v2_spawn::resume_args::{
    PassthroughArgs, RESERVED_FLAGS, RefusedArg, ResumeVariant, check_added_arg,
    parse_resume_pi_args,
};
use entwurf_v2_spawn::{GardenId, SpawnBgPlan};
use proptest::prelude::*;

/// Args that are often a reserved flag (alone or `--flag=value`), `--` or empty, else
/// anything (flags that merely start like a reserved one included).
fn arg() -> impl Strategy<Value = String> {
    let reserved = proptest::sample::select(RESERVED_FLAGS.to_vec());
    prop_oneof![
        4 => any::<String>(),
        2 => proptest::sample::select(vec![
            "--approve", "-e", "./ext.ts", "--modelx", "--sessions", "-pe", "-", "json",
        ])
        .prop_map(str::to_owned),
        1 => reserved.clone().prop_map(str::to_owned),
        1 => (reserved, ".{0,6}").prop_map(|(flag, value)| format!("{flag}={value}")),
        1 => Just("--".to_owned()),
        1 => Just(String::new()),
    ]
}

fn gid() -> impl Strategy<Value = GardenId> {
    "[0-9]{8}T[0-9]{6}-[0-9a-f]{6}".prop_map(|s| GardenId::parse(&s).expect("generated gid"))
}

/// What the rule says about one arg, written out independently of the library.
fn refused(arg: &str) -> bool {
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    arg.is_empty() || arg == "--" || RESERVED_FLAGS.contains(&name)
}

fn options(
    provider: Option<String>,
    model: String,
    extension: PassthroughArgs,
) -> ProductionOptions {
    let mut options = ProductionOptions::with_home(Path::new("/nonexistent-home"), None);
    options.resolve_identity = fixed_identity("/work".into(), provider, model);
    options.shared.extension_args = extension;
    options
}

proptest! {
    #[test]
    fn accepted_args_never_change_who_is_resumed(
        target in gid(),
        session in gid(),
        prompt in any::<String>(),
        provider in proptest::option::of("[a-z]{1,8}"),
        model in ".{1,12}",
        launch in proptest::collection::vec(arg(), 0..5),
        extension in proptest::collection::vec(arg(), 0..5),
    ) {
        let launch_ok = launch.iter().all(|a| !refused(a));
        let extension_ok = extension.iter().all(|a| !refused(a));

        let plan = SpawnBgPlan::new(target, prompt.clone(), "/run/x.sock", Duration::from_secs(1))
            .expect("plan")
            .with_session_id(session.clone())
            .with_launch_args(launch.clone());
        let ext = PassthroughArgs::new(extension.clone());
        prop_assert_eq!(plan.is_ok(), launch_ok, "launch args {:?}", launch);
        prop_assert_eq!(ext.is_ok(), extension_ok, "extension args {:?}", extension);
        for (list, result) in [(&launch, plan.as_ref().err().map(|e| match e {
            PlanError::ForbiddenLaunchArg(refusal) => refusal.clone(),
            other => panic!("unexpected plan error {other}"),
        })), (&extension, ext.as_ref().err().cloned())] {
            if let Some(refusal) = result {
                // The refusal names the first refused arg, at its position.
                let first = list.iter().position(|a| refused(a)).expect("a refused arg");
                prop_assert_eq!(refusal.index(), first);
                prop_assert_eq!(refusal.arg(), list[first].as_str());
            }
        }
        let (Ok(plan), Ok(ext)) = (plan, ext) else { return Ok(()) };

        let deps = ProductionDeps::new(options(provider.clone(), model.clone(), ext));
        let request = deps.resume_request(&plan).expect("request");
        let argv: Vec<String> = request
            .args
            .iter()
            .map(|a| a.to_str().expect("utf-8 arg").to_owned())
            .collect();
        let parsed = parse_resume_pi_args(&argv).expect("the builder's argv parses");
        prop_assert_eq!(parsed.variant, ResumeVariant::V2Control);
        prop_assert_eq!(&parsed.session_id, session.as_str());
        prop_assert_eq!(&parsed.provider, &provider);
        prop_assert_eq!(&parsed.model, &model);
        prop_assert_eq!(&parsed.prompt, &prompt);
        let added: Vec<String> = launch.into_iter().chain(extension).collect();
        prop_assert_eq!(parsed.passthrough, added);
    }

    #[test]
    fn the_library_rule_is_the_written_rule(index in 0..8_usize, arg in arg()) {
        prop_assert_eq!(check_added_arg(index, &arg).is_err(), refused(&arg), "{:?}", arg);
    }
}

#[test]
fn every_reserved_flag_is_refused_both_ways_in_and_in_both_forms() {
    let plan = || {
        SpawnBgPlan::new(
            GardenId::parse("20260613T000000-aaaaaa").expect("gid"),
            "hi",
            "/run/x.sock",
            Duration::from_secs(1),
        )
        .expect("plan")
    };
    let mut bad: Vec<String> = vec!["--".into(), String::new()];
    for flag in RESERVED_FLAGS {
        bad.push(flag.to_owned());
        bad.push(format!("{flag}=20260101T000000-bbbbbb"));
    }
    for arg in &bad {
        let args = ["--approve".to_owned(), arg.clone(), "x".to_owned()];
        let Err(PlanError::ForbiddenLaunchArg(refusal)) = plan().with_launch_args(args.clone())
        else {
            panic!("launch arg {arg:?} accepted");
        };
        assert_eq!((refusal.index(), refusal.arg()), (1, arg.as_str()));
        let refusal = PassthroughArgs::new(args).expect_err("extension arg accepted");
        assert_eq!((refusal.index(), refusal.arg()), (1, arg.as_str()));
        if !arg.is_empty() {
            assert!(
                refusal.to_string().contains(&format!("{arg:?}")),
                "{refusal}"
            );
        }
        if let RefusedArg::Reserved { flag, .. } = refusal {
            assert!(
                arg == flag || arg.starts_with(&format!("{flag}=")),
                "{arg:?} {flag}"
            );
        }
    }
}
