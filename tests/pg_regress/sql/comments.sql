-- comments.sql: every public object of the extension says what it is (\df+, \dv+, \dT+ show
-- it): each function not named _* (the internal helpers), each view and each composite type has
-- a COMMENT. The lists below must be empty.
CREATE EXTENSION credit_ledger;
CREATE VIEW ext_objects AS
SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
 WHERE e.extname = 'credit_ledger' AND d.deptype = 'e';
SELECT p.oid::regprocedure AS function_without_comment
  FROM pg_proc p JOIN ext_objects x ON x.classid = 'pg_proc'::regclass AND x.objid = p.oid
 WHERE p.proname NOT LIKE '\_%' AND obj_description(p.oid, 'pg_proc') IS NULL ORDER BY 1;
SELECT c.oid::regclass AS view_without_comment
  FROM pg_class c JOIN ext_objects x ON x.classid = 'pg_class'::regclass AND x.objid = c.oid
 WHERE c.relkind = 'v' AND obj_description(c.oid, 'pg_class') IS NULL ORDER BY 1;
-- (CREATE TYPE composites only: since PostgreSQL 18 a table's or view's row type is listed as
-- a member of the extension too)
SELECT t.oid::regtype AS type_without_comment
  FROM pg_type t JOIN ext_objects x ON x.classid = 'pg_type'::regclass AND x.objid = t.oid
  JOIN pg_class r ON r.oid = t.typrelid AND r.relkind = 'c'
 WHERE obj_description(t.oid, 'pg_type') IS NULL ORDER BY 1;
-- and there are objects to check (a broken query above would list nothing too)
SELECT count(*) FILTER (WHERE classid = 'pg_proc'::regclass) > 40 AS functions,
       count(*) FILTER (WHERE classid = 'pg_class'::regclass) > 30 AS relations,
       count(*) FILTER (WHERE classid = 'pg_type'::regclass) >= 6 AS types
  FROM ext_objects;
