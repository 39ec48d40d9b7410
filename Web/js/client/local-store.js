// The device's state in IndexedDB. Private keys are non-extractable CryptoKeys (IndexedDB keeps
// them by structured clone); chain keys, root keys and messages are stored as they are, in this
// origin's database only. Each step of the client is one transaction over every store it touches,
// written after the cryptography is done (IndexedDB transactions cannot wait for WebCrypto).

const databaseName = 'securechat';
const version = 1;

function promised(request) {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function completed(transaction) {
  return new Promise((resolve, reject) => {
    transaction.oncomplete = () => resolve();
    transaction.onerror = () => reject(transaction.error);
    transaction.onabort = () => reject(transaction.error ?? new Error('transaction aborted'));
  });
}

export class LocalStore {
  constructor(database) {
    this.database = database;
  }

  static async open(name = databaseName) {
    const request = indexedDB.open(name, version);
    request.onupgradeneeded = () => {
      const db = request.result;
      db.createObjectStore('records');
      const archive = db.createObjectStore('archive', { autoIncrement: true });
      archive.createIndex('conversation', 'conversation');
      db.createObjectStore('outbox', { autoIncrement: true });
    };
    return new LocalStore(await promised(request));
  }

  static async destroy(name = databaseName) {
    await promised(indexedDB.deleteDatabase(name));
  }

  close() {
    this.database.close();
  }

  async get(key) {
    const transaction = this.database.transaction('records');
    return promised(transaction.objectStore('records').get(key));
  }

  /** Every record whose key starts with `prefix`, as [key, value] pairs. */
  async entries(prefix) {
    const transaction = this.database.transaction('records');
    const range = IDBKeyRange.bound(prefix, `${prefix}\uffff`);
    const store = transaction.objectStore('records');
    const [keys, values] = await Promise.all([promised(store.getAllKeys(range)), promised(store.getAll(range))]);
    return keys.map((key, i) => [key, values[i]]);
  }

  async archive(conversation) {
    const transaction = this.database.transaction('archive');
    return promised(transaction.objectStore('archive').index('conversation').getAll(conversation));
  }

  async outbox() {
    const transaction = this.database.transaction('outbox');
    const store = transaction.objectStore('outbox');
    const [keys, values] = await Promise.all([promised(store.getAllKeys()), promised(store.getAll())]);
    return keys.map((row, i) => ({ row, ...values[i] }));
  }

  /**
   * One atomic step: `records` maps keys to values (null deletes), `archive` appends entries,
   * `outboxAdd` appends {id, text} frames (their row numbers are returned in order),
   * `outboxDelete` and `outboxReplace` ({row, id, text}) change queued frames.
   */
  async commit({ records = new Map(), archive = [], outboxAdd = [], outboxDelete = [], outboxReplace = [] }) {
    const transaction = this.database.transaction(['records', 'archive', 'outbox'], 'readwrite', { durability: 'strict' });
    const done = completed(transaction);
    const recordStore = transaction.objectStore('records');
    for (const [key, value] of records) {
      if (value === null) recordStore.delete(key);
      else recordStore.put(value, key);
    }
    const archiveStore = transaction.objectStore('archive');
    for (const entry of archive) archiveStore.add(entry);
    const outboxStore = transaction.objectStore('outbox');
    for (const row of outboxDelete) outboxStore.delete(row);
    for (const { row, id, text } of outboxReplace) outboxStore.put({ id, text }, row);
    const added = outboxAdd.map(({ id, text }) => promised(outboxStore.add({ id, text })));
    await done;
    return Promise.all(added);
  }
}
