//! The args a caller may add to a resume argv (plan launch args, extension args), and
//! the one rule that decides which are refused.
//!
//! The argv places its own flags once each (docs/design.md §9). An added
//! arg that repeats one of them would let a caller resume *another* session under this
//! garden id's lock (`--session-id X`, `--session=/other.jsonl`) or flip the variant
//! (`--no-extensions` on a resident). So every reserved flag is refused in both forms,
//! `--flag value` (the flag alone) and `--flag=value`; `--` is refused because it would
//! turn the builder's own flags after it into positionals; and an empty arg is refused
//! because it has no meaning and would shift a naive reader by one.
//!
//! [`PassthroughArgs`] is the only way the library takes such a list: the check runs when
//! the list is built, so a refused arg can never reach a spawn.

use std::ops::Deref;

use super::RESERVED_FLAGS;

/// Why an added arg was refused. Each variant names the arg and its position in the
/// list it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RefusedArg {
    /// The arg is a flag the resume argv sets itself, alone or as `--flag=value`.
    #[error("arg {index} ({arg:?}) is the reserved flag {flag}, which the resume argv sets itself")]
    Reserved {
        /// 0-based position in the list.
        index: usize,
        /// The arg as given.
        arg: String,
        /// The reserved flag it spells.
        flag: &'static str,
    },
    /// `--` would make every flag the builder places after it a positional.
    #[error("arg {index} (\"--\") would end the options before the resume argv's own flags")]
    EndOfOptions {
        /// 0-based position in the list.
        index: usize,
    },
    /// An empty arg means nothing and shifts whatever reads the argv by one.
    #[error("arg {index} is empty")]
    Empty {
        /// 0-based position in the list.
        index: usize,
    },
}

impl RefusedArg {
    /// The refused arg, as given.
    #[must_use]
    pub fn arg(&self) -> &str {
        match self {
            Self::Reserved { arg, .. } => arg,
            Self::EndOfOptions { .. } => "--",
            Self::Empty { .. } => "",
        }
    }

    /// Its 0-based position in the list it came from.
    #[must_use]
    pub fn index(&self) -> usize {
        match self {
            Self::Reserved { index, .. } | Self::EndOfOptions { index } | Self::Empty { index } => {
                *index
            }
        }
    }
}

/// Checks one added arg at position `index` (see the module docs for the rule).
///
/// # Errors
///
/// [`RefusedArg`] when the arg is a reserved flag in either form, `--`, or empty.
pub fn check_added_arg(index: usize, arg: &str) -> Result<(), RefusedArg> {
    if arg.is_empty() {
        return Err(RefusedArg::Empty { index });
    }
    if arg == "--" {
        return Err(RefusedArg::EndOfOptions { index });
    }
    let name = arg.split_once('=').map_or(arg, |(name, _)| name);
    match RESERVED_FLAGS.iter().find(|flag| **flag == name) {
        Some(flag) => Err(RefusedArg::Reserved {
            index,
            arg: arg.to_owned(),
            flag,
        }),
        None => Ok(()),
    }
}

/// A list of args a caller adds to the resume argv (launch args or extension args),
/// checked when it is built: none is a reserved flag (either form), `--` or empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PassthroughArgs(Vec<String>);

impl PassthroughArgs {
    /// Checks and keeps `args`.
    ///
    /// # Errors
    ///
    /// The first arg that is refused, as [`RefusedArg`]; nothing is kept then.
    pub fn new(args: impl IntoIterator<Item = impl Into<String>>) -> Result<Self, RefusedArg> {
        let args: Vec<String> = args.into_iter().map(Into::into).collect();
        for (index, arg) in args.iter().enumerate() {
            check_added_arg(index, arg)?;
        }
        Ok(Self(args))
    }

    /// The args, in order.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The args, owned.
    #[must_use]
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

impl Deref for PassthroughArgs {
    type Target = [String];

    fn deref(&self) -> &[String] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a PassthroughArgs {
    type Item = &'a String;
    type IntoIter = std::slice::Iter<'a, String>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl TryFrom<Vec<String>> for PassthroughArgs {
    type Error = RefusedArg;

    fn try_from(args: Vec<String>) -> Result<Self, RefusedArg> {
        Self::new(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reserved_flag_is_refused_in_both_forms() {
        for flag in RESERVED_FLAGS {
            for arg in [flag.to_owned(), format!("{flag}=x"), format!("{flag}=")] {
                let err = PassthroughArgs::new(["--approve", arg.as_str()]).unwrap_err();
                assert_eq!(
                    err,
                    RefusedArg::Reserved {
                        index: 1,
                        arg: arg.clone(),
                        flag
                    }
                );
                assert_eq!(err.arg(), arg);
                assert!(err.to_string().contains(&format!("{arg:?}")), "{err}");
            }
        }
    }

    #[test]
    fn separator_and_empty_are_refused() {
        assert_eq!(
            PassthroughArgs::new(["--"]).unwrap_err(),
            RefusedArg::EndOfOptions { index: 0 }
        );
        assert_eq!(
            PassthroughArgs::new(["-e", ""]).unwrap_err(),
            RefusedArg::Empty { index: 1 }
        );
    }

    #[test]
    fn ordinary_args_pass_verbatim() {
        let args = [
            "--approve",
            "-e",
            "/x/ext.ts",
            "--modelling",
            "--mode-x=1",
            "-",
        ];
        let kept = PassthroughArgs::new(args).expect("accepted");
        assert_eq!(kept.as_slice(), args);
    }

    #[test]
    fn the_list_gives_back_what_it_kept_every_way_out() {
        let args = vec!["--approve".to_owned(), "-e".to_owned(), "/x.ts".to_owned()];
        let kept = PassthroughArgs::try_from(args.clone()).expect("accepted");
        assert_eq!(kept.as_slice(), args);
        assert_eq!(&*kept, args.as_slice());
        assert_eq!((&kept).into_iter().cloned().collect::<Vec<_>>(), args);
        assert_eq!(kept.into_vec(), args);
        assert_eq!(
            PassthroughArgs::try_from(vec!["-e".to_owned(), "--model".to_owned()]),
            Err(RefusedArg::Reserved {
                index: 1,
                arg: "--model".to_owned(),
                flag: "--model"
            })
        );
    }

    #[test]
    fn a_refusal_names_its_arg_and_position() {
        let refusals = [
            (check_added_arg(4, "--model=x"), "--model=x", 4),
            (check_added_arg(2, "--"), "--", 2),
            (check_added_arg(3, ""), "", 3),
        ];
        for (refusal, arg, index) in refusals {
            let refusal = refusal.expect_err(arg);
            assert_eq!((refusal.arg(), refusal.index()), (arg, index));
            assert!(
                refusal.to_string().contains(&format!("arg {index} ")),
                "{refusal}"
            );
        }
        // "--" is refused even where "--x" would pass, and so is only the empty arg.
        assert!(check_added_arg(0, "--x").is_ok());
        assert!(check_added_arg(0, " ").is_ok());
    }
}
