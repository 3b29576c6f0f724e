//! Sharding a manifest across machines: a stable subset of rows per shard, chosen by hashing
//! each row's key, so N processes over one shared manifest upload every row exactly once between
//! them, with no coordination and no cluster of our own.
//!
//! The shard comes from `--shard K/N`, or from the scheduler's environment: a Kubernetes Indexed
//! Job's `JOB_COMPLETION_INDEX` with `AVBATCH_SHARD_COUNT` (the Job's `completions`, which
//! Kubernetes does not expose), or a Slurm array's `SLURM_ARRAY_TASK_ID`,
//! `SLURM_ARRAY_TASK_COUNT` and `SLURM_ARRAY_TASK_MIN`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Shard `index` of `count`, `index` counted from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, `0..count`.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

/// A shard that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ShardError(String);

impl Shard {
    /// Checks `index < count` and `count >= 1`.
    pub fn new(index: u32, count: u32) -> Result<Shard, ShardError> {
        if count == 0 {
            return Err(ShardError("a shard count must be at least 1".into()));
        }
        if index >= count {
            return Err(ShardError(format!(
                "shard {index} does not exist among {count} (shards are numbered from 0 to {})",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether the row with this key belongs to this shard. The first 8 bytes of the key's
    /// SHA-256, modulo the count: stable across runs, machines and versions, and even.
    pub fn contains(&self, key: &str) -> bool {
        self.count == 1 || shard_of(key, self.count) == self.index
    }

    /// `shard-K-of-N`, for file names.
    pub fn file_tag(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }

    /// The shard the scheduler's environment describes, if any (`env` reads a variable).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>, ShardError> {
        let number = |name: &str| -> Result<Option<u32>, ShardError> {
            env(name)
                .map(|v| {
                    v.trim().parse::<u32>().map_err(|_| {
                        ShardError(format!(
                            "{name}={} is not a whole number from 0 to {}",
                            crate::excerpt::quoted(&v),
                            u32::MAX
                        ))
                    })
                })
                .transpose()
        };
        if let Some(index) = number("JOB_COMPLETION_INDEX")? {
            let Some(count) = number("AVBATCH_SHARD_COUNT")? else {
                return Err(ShardError(
                    "JOB_COMPLETION_INDEX is set but AVBATCH_SHARD_COUNT is not: set it to the \
                     Job's `completions` (or pass --shard K/N)"
                        .into(),
                ));
            };
            return Shard::new(index, count).map(Some);
        }
        if let Some(id) = number("SLURM_ARRAY_TASK_ID")? {
            let Some(count) = number("SLURM_ARRAY_TASK_COUNT")? else {
                return Err(ShardError(
                    "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not (or pass \
                     --shard K/N)"
                        .into(),
                ));
            };
            let min = number("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
            let index = id.checked_sub(min).ok_or_else(|| {
                ShardError(format!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}"))
            })?;
            return Shard::new(index, count)
                .map_err(|e| {
                    ShardError(format!(
                        "{e}; avbatch needs a contiguous array such as --array=0-{}",
                        count - 1
                    ))
                })
                .map(Some);
        }
        Ok(None)
    }
}

/// The shard of `key` among `count`.
pub fn shard_of(key: &str, count: u32) -> u32 {
    let digest = Sha256::digest(key.as_bytes());
    let head = u64::from_be_bytes(digest[..8].try_into().expect("a SHA-256 digest has 32 bytes"));
    (head % u64::from(count)) as u32
}

impl FromStr for Shard {
    type Err = ShardError;

    /// `K/N`, e.g. `0/4`.
    fn from_str(s: &str) -> Result<Shard, ShardError> {
        let shown = crate::excerpt::quoted(s);
        let (k, n) = s.split_once('/').ok_or_else(|| {
            ShardError(format!("{shown} is not K/N (e.g. 0/4: the first of four shards)"))
        })?;
        let parse = |x: &str| {
            x.trim().parse::<u32>().map_err(|_| {
                ShardError(format!(
                    "{shown} is not K/N with whole numbers (N from 1 to {})",
                    u32::MAX
                ))
            })
        };
        Shard::new(parse(k)?, parse(n)?)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// `NAME.SUFFIX` beside the manifest, `NAME.shard-K-of-N.SUFFIX` for a shard.
pub fn beside(manifest: &Path, shard: Option<Shard>, suffix: &str) -> PathBuf {
    let stem = manifest
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "manifest".into());
    match shard {
        Some(s) => manifest.with_file_name(format!("{stem}.{}.{suffix}", s.file_tag())),
        None => manifest.with_file_name(format!("{stem}.{suffix}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_lands_in_exactly_one_shard_for_1_to_16_shards() {
        let keys: Vec<String> =
            (0..5000).map(|i| format!("videos/{i:05}.mp4:{}:{}", 1000 + i, 17 * i)).collect();
        for count in 1..=16u32 {
            let shards: Vec<Shard> = (0..count).map(|i| Shard::new(i, count).unwrap()).collect();
            let mut sizes = vec![0usize; count as usize];
            for key in &keys {
                let owners: Vec<&Shard> = shards.iter().filter(|s| s.contains(key)).collect();
                assert_eq!(owners.len(), 1, "{key} among {count}");
                sizes[owners[0].index as usize] += 1;
            }
            // Even enough: no shard more than 25 % off the mean at 5000 keys.
            let mean = keys.len() as f64 / f64::from(count);
            for (i, n) in sizes.iter().enumerate() {
                assert!(
                    (*n as f64 - mean).abs() <= mean * 0.25,
                    "shard {i}/{count} has {n} keys, mean {mean}"
                );
            }
        }
    }

    #[test]
    fn the_hash_is_stable() {
        // Fixed forever: changing it would move rows between shards of a running migration.
        assert_eq!(shard_of("row-1", 16), shard_of("row-1", 16));
        let fixed: Vec<u32> =
            ["a", "b", "c", "row-1", "videos/x.mp4"].iter().map(|k| shard_of(k, 7)).collect();
        let expected: Vec<u32> = ["a", "b", "c", "row-1", "videos/x.mp4"]
            .iter()
            .map(|k| {
                let d = Sha256::digest(k.as_bytes());
                (u64::from_be_bytes(d[..8].try_into().unwrap()) % 7) as u32
            })
            .collect();
        assert_eq!(fixed, expected);
    }

    #[test]
    fn parsing_and_the_schedulers_environments() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        assert!("4/4".parse::<Shard>().unwrap_err().to_string().contains("numbered from 0 to 3"));
        assert!("0/0".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(Shard::from_env(&env(&[])), Ok(None));
        assert_eq!(
            Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "2"), ("AVBATCH_SHARD_COUNT", "3")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        assert!(Shard::from_env(&env(&[("JOB_COMPLETION_INDEX", "2")]))
            .unwrap_err()
            .to_string()
            .contains("AVBATCH_SHARD_COUNT"));
        assert_eq!(
            Shard::from_env(&env(&[
                ("SLURM_ARRAY_TASK_ID", "5"),
                ("SLURM_ARRAY_TASK_COUNT", "4"),
                ("SLURM_ARRAY_TASK_MIN", "2")
            ])),
            Ok(Some(Shard { index: 3, count: 4 }))
        );
        assert_eq!(
            Shard::from_env(&env(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "2")])),
            Ok(Some(Shard { index: 0, count: 2 }))
        );
        assert!(Shard::from_env(&env(&[
            ("SLURM_ARRAY_TASK_ID", "9"),
            ("SLURM_ARRAY_TASK_COUNT", "2")
        ]))
        .is_err());
    }
}
