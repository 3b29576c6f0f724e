//! Why a command stopped before its work was done, as cargo reports its errors: the exit code a
//! scheduler sees, what is wrong and what to try. Commands return a [`Stop`] (with `?` from any
//! `anyhow` error); [`crate::finish`] says it, once, so no command prints an error and then
//! goes on, or returns success after one.

use std::fmt;

use super::Exit;
use crate::output::{say, say_error};

/// What ended a command early.
#[derive(Debug)]
pub struct Stop {
    exit: Exit,
    message: String,
    hint: Option<String>,
    asked: bool,
}

/// What a command returns: how it ended, or why it stopped.
pub type Outcome = Result<Exit, Stop>;

impl Stop {
    /// A stop with `exit`, saying `message`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Stop {
        Stop { exit, message: message.into(), hint: None, asked: false }
    }

    /// A stop the person asked for (Ctrl-C, SIGTERM): nothing went wrong, so it is said as a
    /// plain line, not as an `error:`.
    pub fn asked(exit: Exit, message: impl Into<String>) -> Stop {
        Stop { asked: true, ..Stop::new(exit, message) }
    }

    /// Bad flags, configuration, manifest or journal: exit 2, nothing was sent.
    pub fn invalid(message: impl Into<String>) -> Stop {
        Stop::new(Exit::Invalid, message)
    }

    /// The same stop, with what to try.
    pub fn hint(mut self, hint: impl Into<String>) -> Stop {
        self.hint = Some(hint.into());
        self
    }

    /// The same stop, with what to try when there is something.
    pub fn maybe_hint(mut self, hint: Option<impl Into<String>>) -> Stop {
        self.hint = hint.map(Into::into);
        self
    }

    /// The exit code it ends with.
    pub fn exit(&self) -> Exit {
        self.exit
    }

    /// Says it on stderr (or as a JSON log line), and gives the exit code.
    pub fn say(&self) -> Exit {
        if self.asked {
            say(&self.message);
        } else {
            say_error(&self.message, self.hint.as_deref());
        }
        self.exit
    }
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " (hint: {hint})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Stop {}

/// An error no command foresaw (a disk, a task that panicked): exit 2, its causes in a line.
impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Stop {
        Stop::invalid(format!("{e:#}"))
    }
}

impl From<crate::config::ConfigError> for Stop {
    fn from(e: crate::config::ConfigError) -> Stop {
        Stop::invalid(e.message).maybe_hint(e.hint)
    }
}
