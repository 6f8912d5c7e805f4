// credit_ledger from Node.js (node-postgres): pay for the work in the app's own transaction.
//
//     node bill_image.js        # connects with PGHOST / PGPORT / PGUSER / PGDATABASE
//
// The pattern: in one transaction, credit_authorize() first; only when it is approved does the
// app do the work and INSERT its own row. A decline writes no app row (and debits nothing); an
// app error after the authorization rolls back the debit with everything else. A streaming call
// holds the worst case, streams with no transaction open, then captures what it really used.
// Every outcome is checked; exit status 1 on a failure.
import crypto from 'node:crypto';
import pg from 'pg';

// Stands in for the image model: the expensive call the credits pay for.
async function render(prompt) {
  return `https://cdn.example.com/${crypto.randomUUID()}.png`;
}

async function generateImage(client, customer, prompt, requestId) {
  await client.query('BEGIN');
  try {
    const { rows: [auth] } = await client.query(
      "SELECT * FROM credit_authorize(wallet => $1, action => 'image.generate', idempotency_key => $2)",
      [customer, requestId]);
    if (auth.approved) { // declined: nothing debited, no model call, no app row
      const url = await render(prompt);
      await client.query('INSERT INTO images (customer, prompt, url, authorization_id) VALUES ($1, $2, $3, $4)',
        [customer, prompt, url, auth.authorization_id]);
    }
    await client.query('COMMIT');
    return auth;
  } catch (err) {
    await client.query('ROLLBACK'); // the debit goes with everything else
    throw err;
  }
}

async function streamChat(client, customer, maxTokens, stream) {
  // 1. reserve the worst case, in its own short transaction (no lock held while streaming)
  const { rows: [hold] } = await client.query(
    "SELECT * FROM credit_hold(wallet => $1, action => 'chat', quantity => $2::numeric / 1000)",
    [customer, maxTokens]);
  if (!hold.approved) return hold;
  let usedTokens;
  try {
    usedTokens = await stream(); // 2. the model streams; the hold keeps the credits aside
  } catch (err) {
    await client.query('SELECT credit_release($1)', [hold.authorization_id]);
    throw err;
  }
  await client.query('BEGIN'); // 3. spend what was used, with the app's row
  try {
    const { rows: [done] } = await client.query(
      'SELECT * FROM credit_capture($1, quantity => $2::numeric / 1000)', [hold.authorization_id, usedTokens]);
    await client.query('INSERT INTO chats (customer, tokens, authorization_id) VALUES ($1, $2, $3)',
      [customer, usedTokens, hold.authorization_id]);
    await client.query('COMMIT');
    return done;
  } catch (err) {
    await client.query('ROLLBACK');
    throw err;
  }
}

// ------------------------------------------------------------------ checks

const failures = [];
function check(ok, what) {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures.push(what);
}

// numeric arrives as a string: compare it as a decimal string, e.g. same('6.0', '6')
const same = (a, b) => a !== null && Number(a) === Number(b);

async function balance(client, customer) {
  return (await client.query('SELECT credit_balance($1) AS b', [customer])).rows[0].b;
}

async function rows(client, table, customer) {
  const r = await client.query(`SELECT count(*)::int AS n FROM ${table} WHERE customer = $1`, [customer]);
  return r.rows[0].n;
}

async function main() {
  const customer = `cust_node_${crypto.randomBytes(4).toString('hex')}`;
  const client = new pg.Client(); // PGHOST (a socket directory or a host), PGPORT, PGUSER, PGDATABASE
  await client.connect();
  try {
    await client.query(`CREATE TABLE IF NOT EXISTS images (
        id bigserial PRIMARY KEY, customer text NOT NULL,
        prompt text NOT NULL CHECK (prompt <> ''), url text NOT NULL,
        authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    await client.query(`CREATE TABLE IF NOT EXISTS chats (
        id bigserial PRIMARY KEY, customer text NOT NULL, tokens int NOT NULL,
        authorization_id bigint NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`);
    await client.query("SELECT credit_rate_set(action => 'image.generate', credits => 4, unit => 'image')");
    await client.query("SELECT credit_rate_set(action => 'chat', credits => 1, unit => '1k tokens')");
    await client.query('SELECT credit_wallet_create(wallet => $1)', [customer]);
    await client.query("SELECT credit_grant(wallet => $1, amount => 10, category => 'promotional')", [customer]);
    console.log(`node: wallet ${customer} has ${await balance(client, customer)} credits; an image costs 4`);

    let auth = await generateImage(client, customer, 'a red fox in the snow', 'req-1');
    check(auth.approved && same(auth.cost, 4), `image 1 approved, cost ${auth.cost}`);
    check(same(await balance(client, customer), 6) && (await rows(client, 'images', customer)) === 1,
      'balance 10 -> 6, one images row');

    try {
      await generateImage(client, customer, '', 'req-2'); // the app's INSERT violates its CHECK
      check(false, "an empty prompt should fail the app's insert");
    } catch (err) {
      check(err.code === '23514', `app error after authorizing: ${err.code} ${err.message}`);
    }
    check(same(await balance(client, customer), 6) && (await rows(client, 'images', customer)) === 1,
      'ROLLBACK: balance still 6, still one row');

    await generateImage(client, customer, 'a lighthouse at dusk', 'req-3');
    check(same(await balance(client, customer), 2) && (await rows(client, 'images', customer)) === 2,
      'image 2 approved: balance 2, two rows');

    auth = await generateImage(client, customer, 'a third picture', 'req-4');
    check(!auth.approved && auth.reason === 'insufficient_credits', `image 3 declined: ${auth.reason}`);
    check(same(await balance(client, customer), 2) && (await rows(client, 'images', customer)) === 2,
      'declined: nothing debited, no app row');

    let during = null;
    const done = await streamChat(client, customer, 2000, async () => {
      during = await balance(client, customer); // what another request would see meanwhile
      return 1500;
    });
    check(same(during, 0), `chat: 2,000 tokens max = 2 credits held while streaming (balance ${during} meanwhile)`);
    check(done.status === 'captured' && same(done.captured, 1.5),
      `chat: captured ${done.captured} credits for the 1,500 tokens used`);
    check(same(await balance(client, customer), 0.5) && (await rows(client, 'chats', customer)) === 1,
      'balance 2 -> 0.5, one chats row');

    try {
      await streamChat(client, customer, 500, async () => { throw new Error('model connection lost'); });
      check(false, 'the broken stream should throw');
    } catch (err) {
      check(err.message === 'model connection lost', 'stream failed: hold released');
    }
    check(same(await balance(client, customer), 0.5) && (await rows(client, 'chats', customer)) === 1,
      'balance still 0.5, no chats row');

    const { rows: [v] } = await client.query('SELECT count(*)::int AS n FROM credit_verify()');
    check(v.n === 0, 'credit_verify() is empty');
  } finally {
    await client.end();
  }
  if (failures.length > 0) {
    console.log(`node: ${failures.length} check(s) FAILED`);
    return 1;
  }
  console.log('node: all checks passed');
  return 0;
}

main().then((code) => { process.exitCode = code; }, (err) => {
  console.error('node: error:', err);
  process.exitCode = 1;
});
