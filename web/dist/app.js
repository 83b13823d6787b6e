// The verification page (specs/presentation.md): staff scan a holder's code with the camera or a
// keyboard-wedge scanner, paste it, or drop a file. A certificate or its offline QR text is
// verified here, by tongban-core compiled to WebAssembly, against the trust bundle and status
// lists this page cached from its node: nothing about the certificate leaves the device unless
// staff choose to verify through the node. A presentation code (亮证码) is resolved through the
// node, which asks the code's region over the federation.
'use strict';

// ---------------------------------------------------------------- words, in two languages

const WORDS = {
  zh: {
    title: '证照核验', subtitle: '通办 · 电子证照扫码核验', data_title: '核验数据',
    data_loading: '正在载入信任数据…', refresh: '更新信任数据', scan_title: '扫码或输入',
    scan_label: '扫码枪、粘贴证照码或输入亮证码', scan_placeholder: 'TB1:… 或 341200-XXXXX-XXXXX',
    check: '核验', camera_start: '打开摄像头扫码', camera_stop: '关闭摄像头',
    file_label: '选择文件（证照或二维码图片）', drop_help: '把证照文件或二维码图片拖到这里',
    bulk: '连续核验（批量扫码）', online: '联网核验（证照发送至本节点）',
    staff_title: '窗口设置（亮证码需要）', token_label: '机构令牌', purpose_label: '办理事项',
    case_label: '办件编号', result_title: '核验结果', result_none: '尚未核验',
    batch_title: '批量核验记录', col_time: '时间', col_subject: '证照', col_verdict: '结论',
    col_code: '代码', batch_clear: '清空记录',
    footer: '离线核验时，证照内容只在本机处理，不发送到任何地方。',
    valid: '有效', invalid: '无效', lang_other: 'English',
    trust_from: (v, age) => `信任数据：第 ${v} 版，${age}前取得`,
    trust_offline: '（离线：使用本机缓存）', trust_none: '没有信任数据：请联网打开本页一次。',
    trust_expired: '信任数据已过期，请联网更新。',
    list_line: (rc, name, age) => `${name}（${rc}）状态列表：${age}前签发`,
    list_missing: (rc, name) => `${name}（${rc}）：没有状态列表，状态未知`,
    stale: '（较旧）',
    l_type: '证照类型', l_id: '证照标识', l_issuer: '发证机关', l_seal: '电子印章',
    l_valid: '有效期', l_status: '状态', l_fields: '出示的信息', l_code: '结果代码',
    l_detail: '说明', l_provider: '提供地区', l_for: '提供给', l_copy_until: '副本有效至',
    l_how: '核验方式', how_offline: '本机离线核验', how_online: '本节点联网核验',
    how_code: '亮证码：经本节点向发证地区核验',
    long_term: '长期有效', status_unknown: '未知（没有该地区的状态数据）',
    status_as_of: (name, age) => `${name}（${age}前的数据）`,
    no_qr: '图片中没有找到二维码。', camera_denied: '无法打开摄像头：',
    need_token: '核验亮证码需要机构令牌：请在“窗口设置”中填写。',
    network: '无法连接本节点：', counts: (ok, bad) => `有效 ${ok} 件，无效 ${bad} 件`,
    seconds: 's', ago: (n, unit) => `${n} ${unit}`,
    units: ['秒', '分钟', '小时', '天'],
    month_title: '本地区本月业务',
    month_state: (name, month) => `${name}，${month}（北京时间），实时统计自本节点日志`,
    f_issued: '发证', f_renewed: '换证', f_changed: '变更', f_verifications: '核验',
    f_verifications_cross_region: '为外地区核验', f_copies_given: '提供加注件',
    f_presentations_made: '生成亮证码', f_presentations_resolved: '亮证码核验',
    f_refusals: '拒绝', f_cross_region_share: '跨区域办理占比',
  },
  en: {
    title: 'Certificate check', subtitle: 'Tongban · scan and verify e-certificates',
    data_title: 'Verification data', data_loading: 'Loading trust data…',
    refresh: 'Update trust data', scan_title: 'Scan or enter',
    scan_label: 'Scanner, pasted code, or a presentation code',
    scan_placeholder: 'TB1:… or 341200-XXXXX-XXXXX', check: 'Check',
    camera_start: 'Scan with the camera', camera_stop: 'Stop the camera',
    file_label: 'Choose a file (certificate or QR picture)',
    drop_help: 'Drop a certificate file or a QR picture here', bulk: 'Keep scanning (bulk mode)',
    online: 'Verify through the node (sends the certificate to it)',
    staff_title: 'Counter settings (for presentation codes)', token_label: 'Agency token',
    purpose_label: 'Matter handled', case_label: 'Case number', result_title: 'Result',
    result_none: 'Nothing checked yet', batch_title: 'Bulk log', col_time: 'Time',
    col_subject: 'Certificate', col_verdict: 'Verdict', col_code: 'Code', batch_clear: 'Clear',
    footer: 'When checking offline, certificate contents stay on this device and are sent nowhere.',
    valid: 'VALID', invalid: 'INVALID', lang_other: '中文',
    trust_from: (v, age) => `Trust data: version ${v}, fetched ${age} ago`,
    trust_offline: ' (offline: cached on this device)',
    trust_none: 'No trust data: open this page once with the network.',
    trust_expired: 'The trust data has expired: update it with the network.',
    list_line: (rc, name, age) => `${name} (${rc}) status list: signed ${age} ago`,
    list_missing: (rc, name) => `${name} (${rc}): no status list, status unknown`,
    stale: ' (old)',
    l_type: 'Type', l_id: 'Identifier', l_issuer: 'Issued by', l_seal: 'E-seal',
    l_valid: 'Valid', l_status: 'Status', l_fields: 'Fields shown', l_code: 'Code',
    l_detail: 'Detail', l_provider: 'Provided by', l_for: 'Given to', l_copy_until: 'Copy valid until',
    l_how: 'Checked', how_offline: 'on this device, offline', how_online: 'through this node',
    how_code: 'presentation code, through this node with the issuing region',
    long_term: 'no end date', status_unknown: 'unknown (no status data of that region)',
    status_as_of: (name, age) => `${name} (data ${age} old)`,
    no_qr: 'No QR code found in the picture.', camera_denied: 'The camera cannot be opened: ',
    need_token: 'A presentation code needs an agency token: enter it under counter settings.',
    network: 'This node cannot be reached: ', counts: (ok, bad) => `${ok} valid, ${bad} invalid`,
    units: ['s', 'min', 'h', 'd'],
    month_title: "This region's month",
    month_state: (name, month) => `${name}, ${month} (Beijing time), counted live from this node's log`,
    f_issued: 'Issued', f_renewed: 'Renewed', f_changed: 'Changed', f_verifications: 'Verifications',
    f_verifications_cross_region: 'for other regions', f_copies_given: 'Copies given',
    f_presentations_made: 'Presentation codes made', f_presentations_resolved: 'Codes resolved',
    f_refusals: 'Refusals', f_cross_region_share: 'Cross-region share',
  },
};

// What each code means for the person at the counter, and what to do: [zh, en].
const CODES = {
  OK: ['印章、签名和状态均核验通过。', 'Seal, signature and status all check out.',
    '可以受理。', 'You may accept it.'],
  STATUS_REVOKED: ['证照已被发证机关吊销。', 'The issuing agency revoked this certificate.',
    '不予受理；请持证人联系发证机关。', 'Do not accept it; the holder should contact the issuing agency.'],
  STATUS_SUSPENDED: ['证照已被暂停。', 'This certificate is suspended.',
    '暂不受理；请持证人联系发证机关。', 'Do not accept it for now; the holder should contact the issuing agency.'],
  STATUS_CANCELLED: ['证照已注销。', 'This certificate was cancelled.', '不予受理。', 'Do not accept it.'],
  STATUS_TRANSFERRED_OUT: ['证照已迁出到其他地区。', 'This certificate was transferred to another region.',
    '请持证人出示迁入地区的新证照。', 'Ask for the certificate the new region issued.'],
  EXPIRED: ['证照已过有效期。', 'This certificate has expired.', '不予受理；请持证人换领。', 'Do not accept it; the holder should renew it.'],
  SIGNATURE_INVALID: ['签名不正确：证照被改动或伪造。', 'The signature does not verify: the certificate was altered or forged.',
    '不予受理，并按规定报告。', 'Do not accept it; report it as your rules say.'],
  KID_UNKNOWN: ['找不到签发该证照的电子印章。', 'No e-seal with this key is known.',
    '请更新信任数据后重试；仍失败则不予受理。', 'Update the trust data and retry; if it still fails, do not accept it.'],
  DISCLOSURE_MISMATCH: ['出示的信息与证照不符。', 'A field shown does not match the certificate.',
    '不予受理。', 'Do not accept it.'],
  TRUST_BUNDLE_EXPIRED: ['本机信任数据已过期。', 'The trust data on this device has expired.',
    '请联网更新信任数据。', 'Update the trust data with the network.'],
  QR_PREFIX: ['这不是通办证照码。', 'This is not a Tongban certificate code.',
    '请重新扫码，或请持证人出示证照二维码或亮证码。', 'Scan again, or ask for the certificate QR or a presentation code.'],
  QR_ENCODING: ['二维码内容不完整或有误。', 'The code is damaged or incomplete.', '请重新扫码。', 'Scan again.'],
  QR_ZLIB: ['二维码内容不完整或有误。', 'The code is damaged or incomplete.', '请重新扫码。', 'Scan again.'],
  PRESENTATION_MALFORMED: ['亮证码格式不正确。', 'That is not a presentation code.',
    '请核对后重新输入：地区代码和十位字符。', 'Check it: a region code and ten characters.'],
  PRESENTATION_UNKNOWN: ['发证地区没有这个亮证码。', 'The issuing region has no such presentation code.',
    '请核对亮证码，或请持证人重新生成。', 'Check the code, or ask the holder for a new one.'],
  PRESENTATION_EXPIRED: ['亮证码已过期。', 'The presentation code has expired.',
    '请持证人重新生成亮证码。', 'Ask the holder for a new code.'],
  PRESENTATION_USED_UP: ['亮证码已被使用。', 'The presentation code has been used up.',
    '请持证人重新生成亮证码。', 'Ask the holder for a new code.'],
  REGION_UNREACHABLE: ['暂时无法连接发证地区。', 'The issuing region cannot be reached now.',
    '请稍后重试，或改用证照二维码离线核验。', 'Retry later, or check the certificate QR offline.'],
  UNAUTHENTICATED: ['机构令牌不正确。', 'The agency token is not valid.', '请检查窗口设置。', 'Check the counter settings.'],
};

const FIELDS = {
  'holder.name': ['持证主体', 'Holder'], 'holder.id_type': ['证件类型', 'ID type'],
  'holder.id_number': ['证件号码', 'ID number'],
  'licence.registered_capital': ['注册资本', 'Registered capital'],
  'licence.legal_representative': ['法定代表人', 'Legal representative'],
  'licence.business_scope': ['经营范围', 'Business scope'],
  'licence.capital': ['注册资本', 'Capital'], 'licence.scope': ['经营范围', 'Scope'],
};

const STATES = {
  valid: ['有效', 'valid'], suspended: ['暂停', 'suspended'], revoked: ['吊销', 'revoked'],
  cancelled: ['注销', 'cancelled'], expired: ['过期', 'expired'],
  // Keys: core's state names (status.md §2), as the verification reports them.
  'revoked as penalty': ['撤销', 'revoked as a penalty'], 'transferred out': ['迁出', 'transferred out'],
  other: ['其他', 'other'],
};

let lang = localStorage.getItem('tongban.lang') === 'en' ? 'en' : 'zh';
const w = (key, ...args) => {
  const word = WORDS[lang][key];
  return typeof word === 'function' ? word(...args) : word;
};
const pick = (pair) => (lang === 'zh' ? pair[0] : pair[1]);
const $ = (id) => document.getElementById(id);
const now = () => Date.now() / 1000;

function age(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const [unit, n] = s < 120 ? [0, s] : s < 7200 ? [1, Math.round(s / 60)]
    : s < 172800 ? [2, Math.round(s / 3600)] : [3, Math.round(s / 86400)];
  return `${n} ${WORDS[lang].units[unit]}`;
}

function date(seconds) {
  return new Date(seconds * 1000).toLocaleString(lang === 'zh' ? 'zh-CN' : 'en-GB');
}

function translate() {
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
  document.title = `${w('title')} · Tongban`;
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = w(el.dataset.i18n);
  for (const el of document.querySelectorAll('[data-i18n-placeholder]')) {
    el.placeholder = w(el.dataset.i18nPlaceholder);
  }
  $('lang').textContent = w('lang_other');
  $('lang').setAttribute('aria-label', w('lang_other'));
  $('camera').textContent = w(camera.stream ? 'camera_stop' : 'camera_start');
  showData();
  showMonth();
  if (last) render(last.result, last.how);
  renderBatch();
}

// ---------------------------------------------------------------- tongban-core in WebAssembly

const core = {
  exports: null,
  async load() {
    const response = await fetch('tongban_web.wasm');
    const { instance } = await WebAssembly.instantiate(await response.arrayBuffer(), {});
    this.exports = instance.exports;
  },
  // Hands `bytes` to the module, runs `name(...args)`, and reads its JSON answer.
  call(name, bytes, ...args) {
    const e = this.exports;
    const at = e.input(bytes.length);
    if (at === 0 && bytes.length > 0) throw new Error('input too large');
    new Uint8Array(e.memory.buffer, at, bytes.length).set(bytes);
    const ok = e[name](...args) === 1;
    const out = new Uint8Array(e.memory.buffer, e.output_ptr(), e.output_len());
    return { ok, value: JSON.parse(new TextDecoder().decode(out)) };
  },
};

const encode = (text) => new TextEncoder().encode(text);

// ---------------------------------------------------------------- trust data, cached

const DATA_CACHE = 'tongban-data-v1';
const data = { trust: null, lists: {}, fetched: null, offline: false, error: null };

async function fetchBytes(path) {
  const response = await fetch(path, { cache: 'no-store' });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

// Keeps `bytes` under `key` with the time they were fetched.
async function keep(key, bytes) {
  const cache = await caches.open(DATA_CACHE);
  await cache.put(key, new Response(bytes, { headers: { 'x-fetched': String(now()) } }));
}

async function kept(key) {
  const cache = await caches.open(DATA_CACHE);
  const response = await cache.match(key);
  if (!response) return null;
  return {
    bytes: new Uint8Array(await response.arrayBuffer()),
    fetched: Number(response.headers.get('x-fetched')),
  };
}

// The first of `paths` that answers.
async function firstOf(paths) {
  let failure = null;
  for (const path of paths) {
    try {
      return await fetchBytes(path);
    } catch (e) {
      failure = e;
    }
  }
  throw failure;
}

// The node's bundle: the federation's when it is in one, else its own region's. As a static
// bundle on a site without a node, the files `tongban-verify fetch <node> data` wrote
// beside the page.
function fetchTrust() {
  return firstOf(['/v1/federation/trust-bundle', '/v1/trust-bundle', 'data/bundle.tbt']);
}

function fetchList(region, own) {
  const paths = [`/v1/federation/status-lists/${region}`];
  if (region === own) paths.push('/v1/status-list');
  paths.push(`data/status-${region}.tsl`);
  return firstOf(paths);
}

function loadTrust(bytes) {
  const pinned = localStorage.getItem('tongban.federation');
  if (pinned) core.call('pin_federation', encode(pinned));
  const loaded = core.call('set_trust', bytes, now());
  if (!loaded.ok) throw Object.assign(new Error(loaded.value.detail), { code: loaded.value.code });
  localStorage.setItem('tongban.federation', loaded.value.federation);
  return loaded.value;
}

// Fetches fresh data when the network allows, else uses what is cached; loads it into the core.
async function refreshData() {
  data.error = null;
  let trustBytes = null;
  data.offline = false;
  try {
    trustBytes = await fetchTrust();
    await keep('trust', trustBytes);
    data.fetched = now();
  } catch (e) {
    const cached = await kept('trust');
    data.offline = true;
    if (cached) {
      trustBytes = cached.bytes;
      data.fetched = cached.fetched;
    }
  }
  if (!trustBytes) {
    data.trust = null;
    showData();
    return;
  }
  try {
    data.trust = loadTrust(trustBytes);
  } catch (e) {
    data.trust = null;
    data.error = e.code === 'TRUST_BUNDLE_EXPIRED' ? w('trust_expired') : `${e.code}: ${e.message}`;
    showData();
    return;
  }
  data.lists = {};
  const own = await ownRegion();
  for (const region of data.trust.regions) {
    let bytes = null;
    if (!data.offline) {
      try {
        bytes = await fetchList(region.code, own);
        await keep(`list-${region.code}`, bytes);
      } catch (e) { /* the cached one, below */ }
    }
    if (!bytes) bytes = (await kept(`list-${region.code}`))?.bytes ?? null;
    if (!bytes) continue;
    const added = core.call('add_status_list', bytes);
    if (added.ok) data.lists[region.code] = added.value;
  }
  showData();
}

async function ownRegion() {
  if (!data.offline) {
    try {
      const health = await (await fetch('/healthz', { cache: 'no-store' })).json();
      if (health.region) localStorage.setItem('tongban.region', health.region);
    } catch (e) { /* offline: the last one known */ }
  }
  return localStorage.getItem('tongban.region');
}

function showData() {
  const state = $('data-state');
  const lists = $('data-lists');
  lists.replaceChildren();
  if (data.error) {
    state.textContent = data.error;
    state.className = 'stale';
    return;
  }
  if (!data.trust) {
    state.textContent = core.exports ? w('trust_none') : w('data_loading');
    state.className = core.exports ? 'stale' : '';
    return;
  }
  state.className = '';
  state.textContent = w('trust_from', data.trust.version, age(now() - data.fetched))
    + (data.offline ? w('trust_offline') : '');
  for (const region of data.trust.regions) {
    const li = document.createElement('li');
    const list = data.lists[region.code];
    if (list) {
      const old = now() - list.issued > list.ttl;
      li.textContent = w('list_line', region.code, region.name, age(now() - list.issued))
        + (old ? w('stale') : '');
      if (old) li.className = 'stale';
    } else {
      li.textContent = w('list_missing', region.code, region.name);
      li.className = 'stale';
    }
    lists.append(li);
  }
}

// ---------------------------------------------------------------- this region's month

const MONTH_FIGURES = ['issued', 'renewed', 'changed', 'verifications', 'verifications_cross_region',
  'copies_given', 'presentations_made', 'presentations_resolved', 'refusals', 'cross_region_share'];
let month = null;

// The node's figures for the current month (GET /v1/report/month), fetched again every minute.
async function loadMonth() {
  try {
    const response = await fetch('/v1/report/month', { cache: 'no-store' });
    if (!response.ok) return;
    month = await response.json();
    showMonth();
  } catch (e) { /* offline, or no node: the section stays as it was */ }
}

function showMonth() {
  if (!month) return;
  $('month').hidden = false;
  $('month-state').textContent = w('month_state', regionName(month.region), month.month);
  const dl = $('month-figures');
  dl.replaceChildren();
  const f = month.figures;
  const refusals = Object.entries(f).filter(([k]) => k.startsWith('refusals:')).reduce((a, [, v]) => a + v, 0);
  for (const name of MONTH_FIGURES) {
    let value = name === 'refusals' ? refusals : f[name];
    if (value === undefined) continue;
    if (name === 'cross_region_share') value = `${(value * 100).toFixed(1)} %`;
    const dt = document.createElement('dt');
    dt.textContent = w(`f_${name}`);
    const dd = document.createElement('dd');
    dd.textContent = String(value);
    dd.dataset.figure = name;
    dl.append(dt, dd);
  }
}

// ---------------------------------------------------------------- what staff hand in

let last = null;
const batch = { rows: [], recent: new Map() };

async function handleText(raw) {
  const text = raw.trim();
  if (!text) return;
  // The same code twice within three seconds is one scan (a camera sees it in many frames).
  const seen = batch.recent.get(text);
  if (seen && Date.now() - seen < 3000) return;
  for (const [old, at] of batch.recent) {
    if (Date.now() - at >= 3000) batch.recent.delete(old);
  }
  batch.recent.set(text, Date.now());
  const code = core.call('presentation_code', encode(text));
  if (code.ok) return resolveCode(code.value.code);
  if ($('online').checked) {
    // The node takes the certificate's bytes: the core reads them out of the QR text here.
    const decoded = core.call('decode_qr', encode(text));
    if (decoded.ok) return verifyOnline(hexBytes(decoded.value.certificate));
  }
  show(core.call('verify_text', encode(text), now()).value, 'offline');
}

function hexBytes(hex) {
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i += 1) bytes[i] = parseInt(hex.substr(i * 2, 2), 16);
  return bytes;
}

function handleBytes(bytes) {
  if ($('online').checked) return verifyOnline(bytes);
  show(core.call('verify', bytes, now()).value, 'offline');
}

function base64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

async function post(path, body, token) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { method: 'POST', headers, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

// Online: the node verifies (with its live status, and gives a receipt); its verdict, code and
// status are shown with the claims and fields the core reads from the same bytes here.
async function verifyOnline(bytes) {
  try {
    const answer = await post('/v1/verify', { certificate: base64(bytes) });
    if (answer.status !== 200) {
      show({ verdict: 'invalid', code: answer.body.code, detail: answer.body.detail }, 'online');
      return;
    }
    const local = data.trust ? core.call('verify', bytes, now()).value : {};
    const node = answer.body;
    const status = node.status && node.status.known ? {
      known: true, state: node.status.state,
      name: node.status.state === 1 ? 'valid' : node.status.state_name,
      age: now() - node.status.as_of,
    } : { known: false };
    show({
      ...local, verdict: node.verdict, code: node.code, detail: node.detail, status,
      claims: local.claims || { id: node.id },
    }, 'online');
  } catch (e) {
    show({ verdict: 'invalid', code: 'REGION_UNREACHABLE', detail: w('network') + e.message }, 'online');
  }
}

async function resolveCode(code) {
  const token = $('token').value.trim();
  if (!token) {
    show({ verdict: 'invalid', code: 'UNAUTHENTICATED', detail: w('need_token') }, 'code');
    return;
  }
  const caseId = $('case').value.trim() || `CK-${new Date().toISOString().slice(0, 19)}`;
  try {
    const answer = await post('/v1/presentations/resolve', {
      code, purpose: $('purpose').value.trim() || '亮证核验', case: caseId,
    }, token);
    if (answer.status === 201) {
      show(copyResult(answer.body), 'code');
    } else {
      show({ verdict: 'invalid', code: answer.body.code, detail: answer.body.detail }, 'code');
    }
  } catch (e) {
    show({ verdict: 'invalid', code: 'REGION_UNREACHABLE', detail: w('network') + e.message }, 'code');
  }
}

// A purpose-bound copy's answer, shown like a verification.
function copyResult(copy) {
  return {
    verdict: copy.verdict, code: copy.code, detail: copy.detail,
    disclosed: copy.fields, claims: { id: copy.id, region: copy.provider },
    provider: copy.provider, recipient: copy.recipient, expires: copy.expires,
  };
}

// ---------------------------------------------------------------- the verdict

function show(result, how) {
  last = { result, how };
  render(result, how);
  if ($('bulk').checked) {
    const claims = result.claims || {};
    const holder = (result.disclosed || []).find((f) => f.name === 'holder.name');
    batch.rows.unshift({
      at: new Date(), verdict: result.verdict, code: result.code,
      subject: [claims.type_name, holder && holder.value, claims.id].filter(Boolean).join(' · '),
    });
    renderBatch();
  }
}

function row(dl, label, value) {
  if (value === undefined || value === null || value === '') return;
  const dt = document.createElement('dt');
  dt.textContent = label;
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

// "name (detail)" and "a, b" with the punctuation of the language shown.
const paren = (name, detail) => (lang === 'zh' ? `${name}（${detail}）` : `${name} (${detail})`);
const comma = (a, b) => (lang === 'zh' ? `${a}，${b}` : `${a}, ${b}`);

function regionName(code) {
  const region = data.trust && data.trust.regions.find((r) => r.code === code);
  return region ? paren(region.name, code) : code;
}

function render(result, how) {
  const verdict = $('verdict');
  const valid = result.verdict === 'valid';
  verdict.className = `verdict ${valid ? 'valid' : 'invalid'}`;
  const meaning = CODES[result.code];
  verdict.textContent = `${w(valid ? 'valid' : 'invalid')} · ${meaning ? pick(meaning) : result.message || result.code}`;
  const details = $('details');
  details.replaceChildren();
  if (meaning) {
    const advice = document.createElement('p');
    advice.className = 'advice';
    advice.textContent = lang === 'zh' ? meaning[2] : meaning[3];
    details.append(advice);
  }
  const dl = document.createElement('dl');
  const claims = result.claims || {};
  row(dl, w('l_type'), claims.type_name);
  if (claims.agency_name) row(dl, w('l_issuer'), comma(claims.agency_name, regionName(claims.region)));
  if (result.seal) row(dl, w('l_seal'), paren(result.seal.name, result.seal.id));
  if (result.provider) row(dl, w('l_provider'), regionName(result.provider));
  if (result.recipient) row(dl, w('l_for'), paren(result.recipient.agency_name, result.recipient.agency));
  if (result.expires) row(dl, w('l_copy_until'), date(result.expires));
  row(dl, w('l_id'), claims.id);
  if (claims.valid_from) {
    row(dl, w('l_valid'), `${date(claims.valid_from)} → ${claims.valid_until ? date(claims.valid_until) : w('long_term')}`);
  }
  const status = result.status;
  if (status && status.known) {
    const name = STATES[status.name] ? pick(STATES[status.name]) : status.name;
    const reason = status.reason ? (lang === 'zh' ? `：${status.reason}` : `: ${status.reason}`) : '';
    row(dl, w('l_status'), w('status_as_of', name + reason, age(status.age || 0)));
  } else if (status && result.claims) {
    row(dl, w('l_status'), w('status_unknown'));
  }
  row(dl, w('l_code'), result.code);
  if (!valid) row(dl, w('l_detail'), result.detail);
  row(dl, w('l_how'), w(how === 'offline' ? 'how_offline' : how === 'online' ? 'how_online' : 'how_code'));
  details.append(dl);
  const fields = result.disclosed || [];
  if (fields.length) {
    const h = document.createElement('h3');
    h.textContent = w('l_fields');
    const table = document.createElement('dl');
    table.id = 'fields';
    for (const f of fields) {
      const label = FIELDS[f.name] ? paren(pick(FIELDS[f.name]), f.name) : f.name;
      row(table, label, String(typeof f.value === 'object' && f.value !== null ? JSON.stringify(f.value) : f.value));
    }
    details.append(h, table);
  }
}

function renderBatch() {
  const section = $('batch');
  section.hidden = !$('bulk').checked && batch.rows.length === 0;
  const rows = $('batch-rows');
  rows.replaceChildren();
  let ok = 0;
  for (const r of batch.rows) {
    if (r.verdict === 'valid') ok += 1;
    const tr = document.createElement('tr');
    for (const [text, cls] of [[r.at.toLocaleTimeString(), ''], [r.subject, ''],
      [w(r.verdict === 'valid' ? 'valid' : 'invalid'), r.verdict === 'valid' ? 'valid' : 'invalid'], [r.code, '']]) {
      const td = document.createElement('td');
      td.textContent = text;
      if (cls) td.className = cls;
      tr.append(td);
    }
    rows.append(tr);
  }
  $('batch-counts').textContent = w('counts', ok, batch.rows.length - ok);
}

// ---------------------------------------------------------------- camera, files, drop

const camera = { stream: null, timer: null };

async function startCamera() {
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' } });
  } catch (e) {
    show({ verdict: 'invalid', code: 'CAMERA', detail: w('camera_denied') + e.message }, 'offline');
    return;
  }
  const video = $('video');
  video.srcObject = camera.stream;
  video.hidden = false;
  await video.play();
  $('camera').setAttribute('aria-pressed', 'true');
  $('camera').textContent = w('camera_stop');
  camera.timer = setInterval(scanFrame, 200);
}

function stopCamera() {
  clearInterval(camera.timer);
  if (camera.stream) camera.stream.getTracks().forEach((t) => t.stop());
  camera.stream = null;
  $('video').hidden = true;
  $('camera').setAttribute('aria-pressed', 'false');
  $('camera').textContent = w('camera_start');
}

function decodeImage(source, width, height) {
  const canvas = $('frame');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  context.drawImage(source, 0, 0, width, height);
  const pixels = context.getImageData(0, 0, width, height);
  const found = window.jsQR(pixels.data, width, height, { inversionAttempts: 'attemptBoth' });
  return found ? found.data : null;
}

function scanFrame() {
  const video = $('video');
  if (!video.videoWidth) return;
  const text = decodeImage(video, video.videoWidth, video.videoHeight);
  if (!text) return;
  if (!$('bulk').checked) stopCamera();
  handleText(text);
}

async function handleFile(file) {
  if (file.type.startsWith('image/')) {
    const image = await createImageBitmap(file);
    const text = decodeImage(image, image.width, image.height);
    if (text) return handleText(text);
    show({ verdict: 'invalid', code: 'QR_PREFIX', detail: w('no_qr') }, 'offline');
    return;
  }
  handleBytes(new Uint8Array(await file.arrayBuffer()));
}

// ---------------------------------------------------------------- wiring

function wire() {
  $('text-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const input = $('scan-input');
    handleText(input.value);
    input.value = '';
    input.focus();
  });
  // A keyboard-wedge scanner types the code and presses Enter.
  $('scan-input').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) {
      e.preventDefault();
      $('text-form').requestSubmit();
    }
  });
  $('camera').addEventListener('click', () => (camera.stream ? stopCamera() : startCamera()));
  $('file').addEventListener('change', (e) => {
    if (e.target.files[0]) handleFile(e.target.files[0]);
    e.target.value = '';
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    const file = e.dataTransfer.files[0];
    if (file) handleFile(file);
  });
  drop.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); $('file').click(); }
  });
  $('bulk').addEventListener('change', renderBatch);
  $('batch-clear').addEventListener('click', () => { batch.rows = []; renderBatch(); });
  $('refresh').addEventListener('click', refreshData);
  $('lang').addEventListener('click', () => {
    lang = lang === 'zh' ? 'en' : 'zh';
    localStorage.setItem('tongban.lang', lang);
    translate();
  });
  $('token').value = sessionStorage.getItem('tongban.token') || '';
  $('token').addEventListener('change', () => sessionStorage.setItem('tongban.token', $('token').value.trim()));
}

async function main() {
  wire();
  translate();
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('sw.js').catch(() => { /* works, uncached */ });
  }
  await core.load();
  await refreshData();
  await loadMonth();
  setInterval(loadMonth, 60000);
  document.body.dataset.ready = 'true';
  $('scan-input').focus();
  takeFragment();
  window.addEventListener('hashchange', takeFragment);
}

// Opened from a code's QR (`…/verify/#TBP1:…`), or such a link opened in this tab: the fragment
// is the code, and never left the device. It is taken off the address so a reload does not
// resolve it again.
function takeFragment() {
  const fragment = location.hash.slice(1);
  if (!fragment) return;
  history.replaceState(null, '', location.pathname);
  let text = fragment;
  try { text = decodeURIComponent(fragment); } catch (e) { /* Base45 may hold a bare % */ }
  handleText(text);
}

main();
