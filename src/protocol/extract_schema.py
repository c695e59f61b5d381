#!/usr/bin/env python3
"""Extract the wire layout of kafka-protocol's generated request decoders into Sluice's
schema table (src/protocol/schema.rs).

Reads `impl Decodable for X` blocks in the crate's generated sources and evaluates, for every
version, which decoder each field uses. Output is Rust source on stdout.
usage: extract_schema.py <kafka-protocol src/messages dir> > schema.rs
"""
import re, sys, os

MSG_DIR = sys.argv[1]
APIS = [  # (api key name, module)
    ("Produce", "produce_request"), ("Fetch", "fetch_request"),
    ("ListOffsets", "list_offsets_request"), ("Metadata", "metadata_request"),
    ("OffsetCommit", "offset_commit_request"), ("OffsetFetch", "offset_fetch_request"),
    ("FindCoordinator", "find_coordinator_request"), ("JoinGroup", "join_group_request"),
    ("Heartbeat", "heartbeat_request"), ("LeaveGroup", "leave_group_request"),
    ("SyncGroup", "sync_group_request"), ("DescribeGroups", "describe_groups_request"),
    ("ListGroups", "list_groups_request"), ("ApiVersions", "api_versions_request"),
    ("CreateTopics", "create_topics_request"), ("DeleteTopics", "delete_topics_request"),
    ("DeleteRecords", "delete_records_request"), ("InitProducerId", "init_producer_id_request"),
    ("OffsetForLeaderEpoch", "offset_for_leader_epoch_request"),
    ("DescribeConfigs", "describe_configs_request"), ("AlterConfigs", "alter_configs_request"),
    ("CreatePartitions", "create_partitions_request"),
    ("IncrementalAlterConfigs", "incremental_alter_configs_request"),
    ("DescribeCluster", "describe_cluster_request"),
    ("DeleteGroups", "delete_groups_request"), ("OffsetDelete", "offset_delete_request"),
]

def upper_snake(name):
    return re.sub(r'(?<=[a-z0-9])(?=[A-Z])', '_', name).upper()

def blocks(src, header):
    """Yield (name, body) for `header NAME {` blocks, brace-matched."""
    for m in re.finditer(header + r' (\w+) \{', src):
        i = m.end(); depth = 1
        while depth:
            c = src[i]
            depth += c == '{'
            depth -= c == '}'
            i += 1
        yield m.group(1), src[m.end():i - 1]

def field_types(src):
    out = {}
    for name, body in blocks(src, r'pub struct'):
        out[name] = dict(re.findall(r'pub (\w+): ([^\n]+),\n', body))
    return out

def split_if(text):
    """Parse `if C { A } else if D { B } else { E }` or a leaf into [(cond, subtree)]."""
    text = text.strip()
    if not text.startswith('if '):
        return text
    branches = []
    while True:
        if text.startswith('if '):
            brace = text.index('{')
            cond = text[3:brace].strip()
        else:
            brace = text.index('{'); cond = 'True'
        i = brace + 1; depth = 1
        while depth:
            depth += text[i] == '{'; depth -= text[i] == '}'; i += 1
        branches.append((cond, split_if(text[brace + 1:i - 1])))
        text = text[i:].strip()
        if not text.startswith('else'):
            assert text == '', text
            return branches
        text = text[4:].strip()

DEFAULTS = set()

def evaluate(tree, v):
    while isinstance(tree, list):
        for cond, sub in tree:
            c = cond.replace('&&', 'and').replace('||', 'or')
            if eval(c, {}, {'version': v, 'True': True}):
                tree = sub; break
        else:
            return None
    return tree

LEAF = re.compile(r'^types::(.+)\.decode\(buf\)\?;?$')

def leaf_type(leaf, ftype, structs_needed, module):
    m = LEAF.match(leaf.strip())
    if not m:
        assert 'decode' not in leaf and 'buf' not in leaf, leaf
        DEFAULTS.add(leaf.strip())
        return None  # a default value: the field is absent in this version
    t = m.group(1)
    elem = re.sub(r'^(Option<)?(Vec<)?(super::)?', '', ftype).rstrip('>')
    if 'Struct(version)' in t:
        structs_needed.append(elem)
        key = (module, elem)
        if t.startswith('Array'):
            return ('Array', key)
        if t.startswith('CompactArray'):
            return ('CompactArray', key)
        return ('Struct', key)
    simple = {'Int8': 'Int8', 'Int16': 'Int16', 'Int32': 'Int32', 'Int64': 'Int64',
              'Boolean': 'Bool', 'Uuid': 'Uuid', 'String': 'String',
              'CompactString': 'CompactString', 'Bytes': 'Bytes', 'CompactBytes': 'CompactBytes',
              'Array(types::Int32)': 'ArrayInt32', 'Array(types::String)': 'ArrayString',
              'CompactArray(types::Int32)': 'CompactArrayInt32',
              'CompactArray(types::CompactString)': 'CompactArrayCompactString'}
    return (simple[t], None)

def ranges(per_version):
    """[(v, x)] -> [(lo, hi, x)] merging runs of equal x, dropping None."""
    out = []
    for v, x in per_version:
        if out and out[-1][2] == x and out[-1][1] == v - 1:
            out[-1] = (out[-1][0], v, x)
        else:
            out.append((v, v, x))
    return [r for r in out if r[2] is not None]

def parse_struct(module, name, src, ftypes, structs_needed):
    body = dict(blocks(src, r'impl Decodable for'))[name]
    body = body.replace('types::Struct { version }', 'types::Struct(version)')
    m = re.search(r'if version < (-?\d+) \|\| version > (\d+) \{', body)
    if m:
        lo, hi = map(int, m.groups())
    else:  # a single version: `if version != N {`
        lo = hi = int(re.search(r'if version != (\d+) \{', body).group(1))
    lines = body.split('\n')
    fields, tagged, flexible = [], [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r'^        let (mut )?(\w+) = (.*)$', line)
        if m and m.group(2) == 'num_tagged_fields':
            # always-flexible struct: the tag section is not under a version condition
            line = '        if true {'
            lines[i] = line
            lines.insert(i + 1, '            let num_tagged_fields')
            m = None
        if m and m.group(2) not in ('unknown_tagged_fields',):
            stmt = m.group(3); j = i
            while not stmt.rstrip().endswith(';') or (stmt.count('{') != stmt.count('}')):
                j += 1; stmt += '\n' + lines[j]
            i = j + 1
            stmt = stmt.rstrip().rstrip(';')
            tree = split_if(stmt)
            if not isinstance(tree, list) and not LEAF.match(stmt.strip()):
                # a tagged field's default, assigned in the tag section below
                assert "buf" not in stmt and "decode" not in stmt, stmt
                if m.group(1) != "mut ":
                    print("// always-default field: %s.%s = %s" % (name, m.group(2), stmt), file=sys.stderr)
                continue
            fname = m.group(2)
            per = [(v, leaf_type(evaluate(tree, v) or '', ftypes[name][fname], structs_needed, module)) for v in range(lo, hi + 1)]
            fields.append((fname, ranges(per)))
            continue
        m = re.match(r'^        if (.*) \{$', line)
        if m and 'num_tagged_fields' in lines[i + 1]:
            cond = m.group(1)
            flex = [v for v in range(lo, hi + 1) if eval(cond.replace('&&', 'and'), {}, {'version': v, 'true': True})]
            flexible = min(flex) if flex else None
            # tag arms
            j = i
            while not lines[j].startswith('        }'):
                j += 1
            section = '\n'.join(lines[i:j])
            arms = list(re.finditer(r'\n( +)(\d+) => \{(.*?)\n\1\}', section, re.S))
            assert arms or 'match tag' not in section, section
            for am in arms:
                tag = int(am.group(2)); arm = am.group(3)
                assign = re.search(r'(\w+) = (types::.*?\.decode\(buf\)\?);', arm)
                fname = assign.group(1)
                cm = re.search(r'if (.*) \{\n\s*' + fname, arm)
                cond = cm.group(1) if cm else 'True'
                per = []
                for v in range(lo, hi + 1):
                    ok = flexible is not None and v >= flexible and eval(cond.replace('&&', 'and'), {}, {'version': v, 'True': True})
                    per.append((v, leaf_type(assign.group(2), ftypes[name][fname], structs_needed, module) if ok else None))
                tagged.append((tag, fname, ranges(per)))
            i = j + 1
            continue
        i += 1
    return dict(module=module, name=name, lo=lo, hi=hi, flexible=flexible, fields=fields, tagged=tagged)

schemas = {}
order = []
tops = []
for api, module in APIS:
    src = open(os.path.join(MSG_DIR, module + '.rs')).read()
    ftypes = field_types(src)
    top = re.search(r'impl Decodable for (\w+Request) \{', src).group(1)
    tops.append((api, module, top))
    todo = [top]
    while todo:
        n = todo.pop(0)
        if (module, n) in schemas:
            continue
        need = []
        schemas[(module, n)] = parse_struct(module, n, src, ftypes, need)
        order.append((module, n))
        todo.extend(need)

# static names: struct name, prefixed by its module on collision
count = {}
for module, n in order:
    count[n] = count.get(n, 0) + 1
def sname(key):
    module, n = key
    base = upper_snake(n)
    return base if count[n] == 1 else upper_snake(module.replace('_request', '').title().replace('_', '')) + '_' + base

def ty(t, key):
    if t in ('Array', 'CompactArray', 'Struct'):
        return f'{t}(&{sname(key)})'
    return t

HEADER = """//! The wire layout of every request body Sluice decodes, one static per struct of
//! kafka-protocol 0.18.0's generated request decoders: which fields each version reads, in
//! order, and with which encoding. [`super::prevalidate`] walks a frame with it before the
//! crate's decoder runs.
//!
//! @generated by `extract_schema.py` from the crate's sources (its `impl Decodable` blocks);
//! regenerate when upgrading kafka-protocol:
//! `python3 src/protocol/extract_schema.py ~/.cargo/registry/src/*/kafka-protocol-*/src/messages > src/protocol/schema.rs`
//! The tests in `prevalidate.rs` check every entry against the crate: random frames built
//! from this table must decode with the crate, consume every byte and re-encode identically.

use kafka_protocol::messages::*;

use super::prevalidate::{Field, StructSchema, Tagged, Ty::*};
"""

uses_never = any(s["flexible"] is None for s in schemas.values())
print(HEADER.replace("Ty::*}", "Ty::*, NEVER}") if uses_never else HEADER)
for key in order:
    s = schemas[key]
    module, n = key
    flex = s["flexible"] if s["flexible"] is not None else "NEVER"
    print(f'pub(super) static {sname(key)}: StructSchema = StructSchema {{')
    print(f'    name: "{n}", flexible: {flex}, size_of: size_of::<{module}::{n}>(),')
    print('    fields: &[')
    for fname, rs in s['fields']:
        for lo, hi, (t, k) in rs:
            print(f'        Field {{ name: "{fname}", versions: ({lo}, {hi}), ty: {ty(t, k)} }},')
    print('    ],')
    if s['tagged']:
        print('    tagged: &[')
        for tag, fname, rs in s['tagged']:
            for lo, hi, (t, k) in rs:
                print(f'        Tagged {{ tag: {tag}, name: "{fname}", versions: ({lo}, {hi}), ty: {ty(t, k)} }},')
        print('    ],')
    else:
        print('    tagged: &[],')
    print('};')
    print()

print('/// The schema of the request body for `api_key`, if Sluice decodes that API.')
print('pub(super) fn request_schema(api_key: ApiKey) -> Option<&\'static StructSchema> {')
print('    match api_key {')
for api, module, top in tops:
    print(f'        ApiKey::{api} => Some(&{sname((module, top))}),')
print('        _ => None,')
print('    }')
print('}')
print('// defaults seen: ' + ' | '.join(sorted(DEFAULTS)), file=sys.stderr)
