-- tests/upgrade/catalog.sql — a normalized listing of everything the credit_ledger extension
-- defines in a database, one fact per line and free of OIDs, for diffing an upgraded database
-- against a fresh install (pg_dump -s leaves extension members out). Run with psql -At.
--
-- Covered: every extension member (pg_depend deptype 'e' -> pg_describe_object), and for them:
-- functions (signature with defaults, result, language, volatility, parallel safety, strictness,
-- SECURITY DEFINER, leakproof, cost/rows, proconfig, owner, ACL, the whole body line by line),
-- relations (kind, options, persistence, RLS, owner, ACL), columns (position among live columns,
-- type, NOT NULL, default, identity, generated, collation), constraints, indexes, triggers,
-- view definitions, sequences (parameters and owning column), types (composite attributes,
-- enums, domains), schemas (owner, ACL), comments (pg_description) of all of these and of their
-- columns, indexes, constraints and triggers, the extension's config tables with their filters,
-- and objects in schema credit_ledger that are not members.
\set ON_ERROR_STOP 1
SET search_path = pg_catalog, pg_temp;

CREATE TEMP TABLE ext_member AS
SELECT d.classid, d.objid, d.objsubid
  FROM pg_depend d
  JOIN pg_extension e ON e.oid = d.refobjid
 WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e' AND e.extname = 'credit_ledger';

-- ACL as sorted "grantee:privilege[*]" items, with role names (PUBLIC for 0)
CREATE FUNCTION pg_temp.acl_text(acl aclitem[]) RETURNS text LANGUAGE sql STABLE AS $$
    SELECT coalesce(string_agg(coalesce(r.rolname, 'PUBLIC') || ':' || x.privilege_type
                               || CASE WHEN x.is_grantable THEN '*' ELSE '' END, ','
                               ORDER BY coalesce(r.rolname, 'PUBLIC'), x.privilege_type), '<default>')
      FROM aclexplode(acl) x LEFT JOIN pg_roles r ON r.oid = x.grantee
$$;

-- the extension itself
SELECT 'extension|' || e.extname || '|schema=' || n.nspname || '|relocatable=' || e.extrelocatable
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'credit_ledger';
SELECT 'extension.config|' || c.oid::regclass::text || '|' || coalesce(e.extcondition[i], '<null>')
  FROM pg_extension e, generate_subscripts(e.extconfig, 1) i, pg_class c
 WHERE e.extname = 'credit_ledger' AND c.oid = e.extconfig[i]
 ORDER BY 1;

-- members
SELECT 'member|' || pg_describe_object(classid, objid, objsubid) FROM ext_member ORDER BY 1;

-- schemas
SELECT 'schema|' || n.nspname || '|owner=' || pg_get_userbyid(n.nspowner) || '|acl=' || pg_temp.acl_text(n.nspacl)
  FROM pg_namespace n JOIN ext_member m ON m.classid = 'pg_namespace'::regclass AND m.objid = n.oid
 ORDER BY 1;

-- functions
SELECT 'function|' || p.oid::regprocedure::text
       || '|args=' || pg_get_function_arguments(p.oid)
       || '|result=' || coalesce(pg_get_function_result(p.oid), '')
       || '|kind=' || p.prokind::text || '|lang=' || l.lanname
       || '|volatile=' || p.provolatile::text || '|parallel=' || p.proparallel::text
       || '|strict=' || p.proisstrict || '|secdef=' || p.prosecdef || '|leakproof=' || p.proleakproof
       || '|retset=' || p.proretset || '|cost=' || p.procost || '|rows=' || p.prorows
       || '|config=' || coalesce(array_to_string(p.proconfig, ';'), '<none>')
       || '|probin=' || coalesce(p.probin, '<none>')
       || '|owner=' || pg_get_userbyid(p.proowner) || '|acl=' || pg_temp.acl_text(p.proacl)
  FROM pg_proc p
  JOIN pg_language l ON l.oid = p.prolang
  JOIN ext_member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
 ORDER BY 1;
SELECT 'function.body|' || p.oid::regprocedure::text || '|' || lpad(n::text, 4, '0') || '|' || line
  FROM pg_proc p
  JOIN ext_member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid,
       regexp_split_to_table(coalesce(p.prosrc, ''), E'\n') WITH ORDINALITY AS b(line, n)
 ORDER BY p.oid::regprocedure::text, n;

-- relations (tables, views, sequences, composite types' relations)
SELECT 'relation|' || c.oid::regclass::text || '|kind=' || c.relkind::text || '|persistence=' || c.relpersistence::text
       || '|options=' || coalesce(array_to_string(c.reloptions, ','), '<none>')
       || '|rls=' || c.relrowsecurity || '|owner=' || pg_get_userbyid(c.relowner)
       || '|acl=' || pg_temp.acl_text(c.relacl)
  FROM pg_class c
 WHERE c.oid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
    OR c.reltype IN (SELECT objid FROM ext_member WHERE classid = 'pg_type'::regclass)
 ORDER BY 1;
-- columns, numbered among live columns (an upgrade that drops a column leaves a hole in attnum)
SELECT 'column|' || c.oid::regclass::text || '|' || lpad((row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum))::text, 3, '0')
       || '|' || a.attname || '|' || format_type(a.atttypid, a.atttypmod)
       || CASE WHEN a.attnotnull THEN '|not null' ELSE '' END
       || coalesce('|default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
       || CASE WHEN a.attidentity <> '' THEN '|identity ' || a.attidentity::text ELSE '' END
       || CASE WHEN a.attgenerated <> '' THEN '|generated ' || a.attgenerated::text ELSE '' END
       || CASE WHEN a.attcollation <> 0 AND a.attcollation <> t.typcollation
               THEN '|collate ' || a.attcollation::regcollation::text ELSE '' END
       || CASE WHEN a.attacl IS NOT NULL THEN '|acl=' || pg_temp.acl_text(a.attacl) ELSE '' END
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
 WHERE (c.oid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
        OR c.reltype IN (SELECT objid FROM ext_member WHERE classid = 'pg_type'::regclass))
   AND c.relkind <> 'S'
 ORDER BY c.oid::regclass::text, a.attnum;
SELECT 'constraint|' || c.conrelid::regclass::text || '|' || c.conname || '|' || pg_get_constraintdef(c.oid, true)
       || CASE WHEN c.condeferrable THEN '|deferrable' ELSE '' END
  FROM pg_constraint c
 WHERE c.conrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY 1;
SELECT 'index|' || i.indrelid::regclass::text || '|' || pg_get_indexdef(i.indexrelid)
       || CASE WHEN i.indisclustered THEN '|clustered' ELSE '' END
       || CASE WHEN NOT i.indisvalid THEN '|INVALID' ELSE '' END
       || '|options=' || coalesce(array_to_string(ic.reloptions, ','), '<none>')
  FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid
 WHERE i.indrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY 1;
SELECT 'trigger|' || t.tgrelid::regclass::text || '|' || pg_get_triggerdef(t.oid, true)
       || '|enabled=' || t.tgenabled::text
  FROM pg_trigger t
 WHERE NOT t.tgisinternal
   AND t.tgrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY 1;
SELECT 'view|' || c.oid::regclass::text || '|' || lpad(n::text, 4, '0') || '|' || line
  FROM pg_class c,
       regexp_split_to_table(pg_get_viewdef(c.oid, true), E'\n') WITH ORDINALITY AS v(line, n)
 WHERE c.relkind IN ('v', 'm')
   AND c.oid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY c.oid::regclass::text, n;
SELECT 'policy|' || p.polrelid::regclass::text || '|' || p.polname || '|' || p.polcmd::text
       || '|' || coalesce(pg_get_expr(p.polqual, p.polrelid), '') || '|' || coalesce(pg_get_expr(p.polwithcheck, p.polrelid), '')
  FROM pg_policy p
 WHERE p.polrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY 1;
SELECT 'sequence|' || s.seqrelid::regclass::text || '|' || format_type(s.seqtypid, NULL)
       || '|start=' || s.seqstart || '|inc=' || s.seqincrement || '|min=' || s.seqmin || '|max=' || s.seqmax
       || '|cache=' || s.seqcache || '|cycle=' || s.seqcycle
       || '|owned_by=' || coalesce((SELECT d.refobjid::regclass::text || '.' || a.attname
                                      FROM pg_depend d
                                      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                                     WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')), '<none>')
  FROM pg_sequence s
 WHERE s.seqrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
 ORDER BY 1;

-- types that are not relations' row types: enums, domains, base types, ranges
SELECT 'type|' || t.oid::regtype::text || '|typtype=' || t.typtype::text
       || coalesce('|base=' || format_type(NULLIF(t.typbasetype, 0), t.typtypmod), '')
       || CASE WHEN t.typnotnull THEN '|not null' ELSE '' END
       || coalesce('|default=' || t.typdefault, '')
       || coalesce('|labels=' || (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid), '')
       || coalesce('|checks=' || (SELECT string_agg(pg_get_constraintdef(oid, true), ';' ORDER BY conname)
                                    FROM pg_constraint WHERE contypid = t.oid), '')
       || '|owner=' || pg_get_userbyid(t.typowner) || '|acl=' || pg_temp.acl_text(t.typacl)
  FROM pg_type t
 WHERE t.oid IN (SELECT objid FROM ext_member WHERE classid = 'pg_type'::regclass)
 ORDER BY 1;

-- comments on members and on their sub-objects (columns, constraints, indexes, triggers)
WITH obj AS (
    SELECT classid, objid, objsubid FROM ext_member
    UNION SELECT 'pg_class'::regclass, a.attrelid, a.attnum
            FROM pg_attribute a
           WHERE a.attnum > 0 AND NOT a.attisdropped
             AND a.attrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
    UNION SELECT 'pg_constraint'::regclass, c.oid, 0 FROM pg_constraint c
           WHERE c.conrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
    UNION SELECT 'pg_class'::regclass, i.indexrelid, 0 FROM pg_index i
           WHERE i.indrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
    UNION SELECT 'pg_trigger'::regclass, t.oid, 0 FROM pg_trigger t
           WHERE NOT t.tgisinternal AND t.tgrelid IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
    UNION SELECT 'pg_extension'::regclass, e.oid, 0 FROM pg_extension e WHERE e.extname = 'credit_ledger'
)
SELECT 'comment|' || pg_describe_object(o.classid, o.objid, o.objsubid) || '|' || replace(d.description, E'\n', '\n')
  FROM obj o
  JOIN pg_description d ON d.classoid = o.classid AND d.objoid = o.objid AND d.objsubid = o.objsubid
 ORDER BY 1;
SELECT 'comment.count|' || count(*) || ' of ' || (SELECT count(*) FROM ext_member WHERE classid = 'pg_proc'::regclass)
       || ' member functions commented'
  FROM ext_member m JOIN pg_description d ON d.classoid = m.classid AND d.objoid = m.objid AND d.objsubid = 0
 WHERE m.classid = 'pg_proc'::regclass;

-- anything in schema credit_ledger that is not a member (an upgrade script creating objects
-- outside the extension, or leftovers)
SELECT 'not_member|' || pg_describe_object('pg_class'::regclass, c.oid, 0)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'credit_ledger' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'c', 'f')
   AND c.oid NOT IN (SELECT objid FROM ext_member WHERE classid = 'pg_class'::regclass)
UNION ALL
SELECT 'not_member|' || pg_describe_object('pg_proc'::regclass, p.oid, 0)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'credit_ledger'
   AND p.oid NOT IN (SELECT objid FROM ext_member WHERE classid = 'pg_proc'::regclass)
ORDER BY 1;
