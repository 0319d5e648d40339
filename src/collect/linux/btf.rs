//! Pure reader of the kernel's BTF type information
//! (`/sys/kernel/btf/vmlinux`): finds a function's type id and struct
//! member offsets, which the BPF owner iterator needs to be loaded.

/// Why BTF could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BtfError {
    #[error("not BTF data (bad magic or header)")]
    BadHeader,
    #[error("truncated BTF type at offset {0}")]
    Truncated(usize),
    #[error("unknown BTF kind {kind} at offset {offset}")]
    UnknownKind { kind: u32, offset: usize },
    #[error("BTF has no {0}")]
    Missing(&'static str),
}

/// A struct member to locate: `(struct name, member name)`.
pub type MemberQuery = (&'static str, &'static str);

/// What [`lookup`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtfLookup {
    /// Type id of the `FUNC` asked for.
    pub func_id: u32,
    /// Byte offset of each queried member, in query order.
    pub member_offsets: Vec<u32>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([s[0], s[1], s[2], s[3]]))
}

fn name_at(strings: &[u8], off: u32) -> &[u8] {
    let rest = strings.get(off as usize..).unwrap_or(&[]);
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    &rest[..end]
}

/// One BTF type record, decoded from its 12-byte header on demand.
#[derive(Clone, Copy)]
struct TypeRec {
    kind: u32,
    name_off: u32,
    vlen: usize,
    kind_flag: bool,
    /// Offset of the record's variable part (members, params...) in the
    /// type section.
    body: usize,
}

/// `BTF_KIND_STRUCT` and `BTF_KIND_UNION`.
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_FUNC: u32 = 12;

/// Kernel BTF, parsed once (the vmlinux blob is ~5 MB: both BPF programs
/// are set up from one parse).
pub struct Btf<'a> {
    types: &'a [u8],
    strings: &'a [u8],
    /// Where each type's header starts in `types`, indexed by type id - 1
    /// (4 bytes per type: the kernel has ~150k, and decoding them all up
    /// front cost a one-shot snapshot several ms of page faults).
    starts: Vec<u32>,
}

impl<'a> Btf<'a> {
    /// Parses the type section's record headers. Never panics.
    pub fn parse(btf: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        if btf.len() < 24 || btf[0..2] != 0xEB9F_u16.to_ne_bytes() {
            return Err(BtfError::BadHeader);
        }
        let hdr_len = u32_at(btf, 4).ok_or(BtfError::BadHeader)? as usize;
        let field = |at| {
            u32_at(btf, at)
                .map(|v| v as usize)
                .ok_or(BtfError::BadHeader)
        };
        let (type_off, type_len, str_off, str_len) =
            (field(8)?, field(12)?, field(16)?, field(20)?);
        let section = |off: usize, len: usize| {
            let start = hdr_len.checked_add(off)?;
            btf.get(start..start.checked_add(len)?)
        };
        let types = section(type_off, type_len).ok_or(BtfError::BadHeader)?;
        let strings = section(str_off, str_len).ok_or(BtfError::BadHeader)?;

        let mut starts: Vec<u32> = Vec::with_capacity(types.len() / 24);
        let mut off = 0usize;
        while off < types.len() {
            let Some(info) = u32_at(types, off + 4) else {
                return Err(BtfError::Truncated(off));
            };
            let kind = (info >> 24) & 0x1f;
            let vlen = (info & 0xffff) as usize;
            let extra = match kind {
                1 | 14 | 17 => 4,
                3 => 12,
                4 | 5 | 15 | 19 => vlen * 12,
                6 | 13 => vlen * 8,
                2 | 7..=12 | 16 | 18 => 0,
                kind => return Err(BtfError::UnknownKind { kind, offset: off }),
            };
            let next = off + 12 + extra;
            if next > types.len() || u32::try_from(off).is_err() {
                return Err(BtfError::Truncated(off));
            }
            starts.push(off as u32);
            off = next;
        }
        Ok(Btf {
            types,
            strings,
            starts,
        })
    }

    /// Type `id`'s record (`None` for `void` or an unknown id).
    fn rec(&self, id: u32) -> Option<TypeRec> {
        let off = *self.starts.get((id as usize).checked_sub(1)?)? as usize;
        let info = u32_at(self.types, off + 4)?;
        Some(TypeRec {
            kind: (info >> 24) & 0x1f,
            name_off: u32_at(self.types, off)?,
            vlen: (info & 0xffff) as usize,
            kind_flag: info >> 31 == 1,
            body: off + 12,
        })
    }

    /// Every type record with its id.
    fn recs(&self) -> impl Iterator<Item = (u32, TypeRec)> + '_ {
        (1..=self.starts.len() as u32).filter_map(|id| self.rec(id).map(|r| (id, r)))
    }

    fn name(&self, r: &TypeRec) -> &'a [u8] {
        name_at(self.strings, r.name_off)
    }

    /// Type id of the `FUNC` named `func`.
    pub fn func_id(&self, func: &str) -> Result<u32, BtfError> {
        self.recs()
            .find(|(_, r)| r.kind == KIND_FUNC && self.name(r) == func.as_bytes())
            .map(|(id, _)| id)
            .ok_or(BtfError::Missing("iterator function"))
    }

    /// Byte offsets of `members` (first struct of each name that has
    /// members). A member inside an anonymous struct or union
    /// (`sock_common.skc_daddr`, say) is found too, at its offset from the
    /// start of the named struct.
    pub fn member_offsets(&self, members: &[MemberQuery]) -> Result<Vec<u32>, BtfError> {
        // One pass over the types finds every struct asked for.
        let mut structs: Vec<Option<TypeRec>> = vec![None; members.len()];
        for (_, r) in self.recs() {
            if r.kind != KIND_STRUCT || r.vlen == 0 {
                continue;
            }
            let name = self.name(&r);
            for (slot, (sname, _)) in structs.iter_mut().zip(members) {
                if slot.is_none() && name == sname.as_bytes() {
                    *slot = Some(r);
                }
            }
        }
        structs
            .iter()
            .zip(members)
            .map(|(r, (_, mname))| {
                r.and_then(|r| self.member_offset(&r, mname.as_bytes(), 0))
                    .ok_or(BtfError::Missing("struct member"))
            })
            .collect()
    }

    /// Byte offset of member `want` in the struct or union `rec`, looking
    /// into anonymous struct/union members (at most a few levels deep).
    fn member_offset(&self, rec: &TypeRec, want: &[u8], depth: u32) -> Option<u32> {
        let mut anonymous = Vec::new();
        for m in 0..rec.vlen {
            let at = rec.body + m * 12;
            let (mn, mtype, moff) = (
                u32_at(self.types, at)?,
                u32_at(self.types, at + 4)?,
                u32_at(self.types, at + 8)?,
            );
            let bits = if rec.kind_flag {
                moff & 0x00ff_ffff
            } else {
                moff
            };
            let mname = name_at(self.strings, mn);
            if mname == want {
                return (bits % 8 == 0).then_some(bits / 8);
            }
            if mname.is_empty() && bits % 8 == 0 {
                anonymous.push((mtype, bits / 8));
            }
        }
        if depth >= 4 {
            return None;
        }
        anonymous.into_iter().find_map(|(id, base)| {
            let inner = self.rec(id)?;
            if inner.kind != KIND_STRUCT && inner.kind != KIND_UNION {
                return None;
            }
            self.member_offset(&inner, want, depth + 1)?
                .checked_add(base)
        })
    }
}

/// Finds the `FUNC` named `func` and the byte offsets of `members` in one
/// call (see [`Btf`]). Never panics.
pub fn lookup(btf: &[u8], func: &str, members: &[MemberQuery]) -> Result<BtfLookup, BtfError> {
    let btf = Btf::parse(btf)?;
    Ok(BtfLookup {
        func_id: btf.func_id(func)?,
        member_offsets: btf.member_offsets(members)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A BTF blob of these type records (u32 words) and strings.
    fn btf(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let t: Vec<u8> = types.iter().flat_map(|v| v.to_ne_bytes()).collect();
        let lens = [
            24u32,
            0,
            t.len() as u32,
            t.len() as u32,
            strings.len() as u32,
        ];
        let mut b = Vec::new();
        b.extend_from_slice(&0xEB9F_u16.to_ne_bytes());
        b.extend_from_slice(&[1, 0]);
        b.extend(lens.iter().flat_map(|v| v.to_ne_bytes()));
        b.extend(t);
        b.extend_from_slice(strings);
        b
    }

    /// A tiny BTF blob: int, struct s { int a; int b; }, func f.
    #[rustfmt::skip]
    fn blob() -> Vec<u8> {
        btf(
            &[
                1, 1 << 24, 4, 32, // [1] int
                5, (4 << 24) | 2, 8, 7, 1, 0, 9, 1, 32, // [2] struct s
                11, 12 << 24, 0, // [3] func f
            ],
            b"\0int\0s\0a\0b\0f\0",
        )
    }

    #[test]
    fn finds_func_and_members() {
        let l = lookup(&blob(), "f", &[("s", "b"), ("s", "a")]).unwrap();
        assert_eq!(l.func_id, 3);
        assert_eq!(l.member_offsets, [4, 0]);
        assert_eq!(
            lookup(&blob(), "g", &[]),
            Err(BtfError::Missing("iterator function"))
        );
        assert_eq!(
            lookup(&blob(), "f", &[("s", "c")]),
            Err(BtfError::Missing("struct member"))
        );
    }

    #[test]
    fn finds_members_inside_anonymous_unions() {
        // int; union { int y; int z; }; struct t { int x; union; }; func f
        #[rustfmt::skip]
        let b = btf(
            &[
                1, 1 << 24, 4, 32, // [1] int
                0, (5 << 24) | 2, 4, 9, 1, 0, 11, 1, 0, // [2] anonymous union
                5, (4 << 24) | 2, 8, 7, 1, 0, 0, 2, 32, // [3] struct t
                13, 12 << 24, 0, // [4] func f
            ],
            b"\0int\0t\0x\0y\0z\0f\0",
        );
        let l = lookup(&b, "f", &[("t", "z"), ("t", "x"), ("t", "y")]).unwrap();
        assert_eq!(l.func_id, 4);
        assert_eq!(l.member_offsets, [4, 0, 4]);
    }

    proptest! {
        #[test]
        fn arbitrary_and_mutated_bytes_never_panic(
            bytes in proptest::collection::vec(any::<u8>(), 0..512),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
        ) {
            let _ = lookup(&bytes, "f", &[("s", "a")]);
            let mut b = blob();
            for (at, v) in edits {
                let i = at % b.len();
                b[i] = v;
            }
            let _ = lookup(&b, "f", &[("s", "a")]);
        }
    }
}
