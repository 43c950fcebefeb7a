// A typed client of the deliveries log, compiled by tsc against the types that
// openapi-typescript generates from the served OpenAPI description (api.d.ts): a filter that
// the description does not declare, or a value of the wrong type, does not compile. Run with
// node against a live server, it lists a wallet's deliveries and its platform deliveries with
// every filter, and bulk-replays with every filter the replay takes; each must answer 200.
//
// Environment: APIDOCS_BASE_URL, APIDOCS_TOKEN (GLOBAL_WALLET_CRUD), APIDOCS_WALLET,
// APIDOCS_CHANNEL and APIDOCS_EVENT_ID (a wallet channel of that wallet and an event it
// received), APIDOCS_CURSOR (a nextCursor of that log).

import createClient from 'openapi-fetch';
import type { paths } from './api.js';

function env(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') {
    throw new Error(`${name} is not set`);
  }
  return value;
}

const client = createClient<paths>({
  baseUrl: env('APIDOCS_BASE_URL'),
  headers: { Authorization: `Bearer ${env('APIDOCS_TOKEN')}` },
});

type ListQuery = NonNullable<
  paths['/api/wallets/{walletExternalKey}/integration-deliveries']['get']['parameters']['query']
>;

const walletExternalKey = env('APIDOCS_WALLET');
const filters: ListQuery = {
  state: ['PENDING', 'DELIVERING', 'FAILED', 'DELIVERED'],
  channel: env('APIDOCS_CHANNEL'),
  eventType: 'com.credenco.businesswallet.identifier.created.v1',
  eventId: env('APIDOCS_EVENT_ID'),
  wallet: env('APIDOCS_WALLET'),
  from: new Date(Date.now() - 3_600_000).toISOString(),
  to: new Date(Date.now() + 3_600_000).toISOString(),
  limit: 1,
  cursor: env('APIDOCS_CURSOR'),
};

let failures = 0;
function check(what: string, status: number, body: unknown): void {
  if (status === 200) {
    console.log(`ok: ${what}: 200`);
  } else {
    failures += 1;
    console.log(`FAILED: ${what}: ${status} ${JSON.stringify(body)}`);
  }
}

// Without the cursor: the first page, which holds the one delivery of the event.
const { cursor, ...firstPage } = filters;
const first = await client.GET('/api/wallets/{walletExternalKey}/integration-deliveries', {
  params: { path: { walletExternalKey }, query: firstPage },
});
check('the wallet deliveries list, every filter but the cursor', first.response.status, first.data ?? first.error);
const items = first.data?.items ?? [];
if (items.length !== 1 || items[0].eventId !== filters.eventId) {
  failures += 1;
  console.log(`FAILED: expected the one delivery of event ${filters.eventId}, got ${JSON.stringify(items)}`);
}

const paged = await client.GET('/api/wallets/{walletExternalKey}/integration-deliveries', {
  params: { path: { walletExternalKey }, query: { ...filters, cursor } },
});
check('the wallet deliveries list, every filter', paged.response.status, paged.data ?? paged.error);

const platform = await client.GET('/api/integration-deliveries', {
  params: {
    query: { state: ['all'], eventType: filters.eventType, wallet: walletExternalKey, from: filters.from, to: filters.to, limit: 200 },
  },
});
check('the platform deliveries list', platform.response.status, platform.data ?? platform.error);

const replay = await client.POST('/api/wallets/{walletExternalKey}/integration-deliveries/replay', {
  params: {
    path: { walletExternalKey },
    query: {
      channel: filters.channel,
      eventType: filters.eventType,
      eventId: filters.eventId,
      wallet: walletExternalKey,
      from: filters.from,
      to: filters.to,
    },
  },
});
check('the bulk replay, every filter', replay.response.status, replay.data ?? replay.error);

if (failures > 0) {
  process.exit(1);
}
