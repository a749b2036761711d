// The hdfstream viewer: a directory listing over the server's msgpack API, and H5Web over
// its h5grove endpoint for HDF5 files. Every page is a full load of <base>/viewer/<vpath>:
//   <base>/viewer/ and <base>/viewer/<dir>/  list a directory;
//   <base>/viewer/<file>[?path=/Group/Data]  open an HDF5 file in H5Web (at that object).
import '@h5web/app/styles.css';
import './viewer.css';

import { App, H5GroveProvider } from '@h5web/app';
import { decode } from '@msgpack/msgpack';
import { StrictMode, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';

/** The server's base path ("" or "/a/b"), injected into index.html by the server. */
const BASE = document.querySelector('meta[name="hdfstream-base"]')?.content ?? '';
const VIEWER = `${BASE}/viewer/`;
const HDF5_TYPE = 'application/x-hdf5';

function decodeSegment(segment) {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A virtual path as a URL path: each segment percent-encoded, "/" kept. */
function encodeVpath(vpath) {
  return vpath.split('/').map(encodeURIComponent).join('/');
}

/** The virtual path this page shows (decoded, no leading slash; a trailing one for a directory). */
function pageVpath() {
  const path = window.location.pathname.split('/').map(decodeSegment).join('/');
  return path.startsWith(VIEWER) ? path.slice(VIEWER.length) : '';
}

function viewerHref(vpath) {
  return VIEWER + encodeVpath(vpath);
}

/** GET <base>/msgpack/<vpath>: the decoded map, or an Error with the server's message. */
async function fetchListing(vpath) {
  const response = await fetch(`${BASE}/msgpack/${encodeVpath(vpath)}`, {
    credentials: 'same-origin',
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  let value;
  try {
    value = decode(bytes);
  } catch {
    throw new Error(`${response.status} ${response.statusText}`);
  }
  if (!response.ok) {
    throw new Error(value?.error ?? `${response.status} ${response.statusText}`);
  }
  return value;
}

function formatSize(bytes) {
  if (typeof bytes !== 'number' && typeof bytes !== 'bigint') return '';
  const n = Number(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatTime(millis) {
  if (millis === undefined || millis === null) return '';
  const date = new Date(Number(millis));
  return Number.isNaN(date.getTime()) ? '' : date.toISOString().replace('T', ' ').slice(0, 19);
}

function Breadcrumbs({ vpath }) {
  const parts = vpath.split('/').filter((p) => p !== '');
  const crumbs = [<a key="root" href={VIEWER}>root</a>];
  parts.forEach((part, i) => {
    const isLast = i === parts.length - 1;
    const target = `${parts.slice(0, i + 1).join('/')}/`;
    crumbs.push(<span key={`s${i}`}> / </span>);
    crumbs.push(
      isLast && vpath.endsWith('/') ? (
        <span key={`p${i}`}>{part}</span>
      ) : (
        <a key={`p${i}`} href={viewerHref(target)}>
          {part}
        </a>
      ),
    );
  });
  return <nav className="hs-crumbs">{crumbs}</nav>;
}

function Header({ vpath }) {
  return (
    <header className="hs-header">
      <span className="hs-title">hdfstream</span>
      <Breadcrumbs vpath={vpath} />
    </header>
  );
}

function Listing({ dir, listing }) {
  const prefix = dir === '' ? '' : `${dir}/`;
  const dirs = Object.keys(listing.directories ?? {});
  const files = Object.entries(listing.files ?? {});
  return (
    <main className="hs-listing">
      {listing.description ? <p className="hs-description">{listing.description}</p> : null}
      <table>
        <thead>
          <tr>
            <th>Name</th>
            <th>Size</th>
            <th>Modified</th>
          </tr>
        </thead>
        <tbody>
          {dir !== '' ? (
            <tr className="hs-dir">
              <td>
                <a href={viewerHref(dir.split('/').slice(0, -1).map((p) => `${p}/`).join(''))}>../</a>
              </td>
              <td />
              <td />
            </tr>
          ) : null}
          {dirs.map((name) => (
            <tr key={`d:${name}`} className="hs-dir" data-name={name}>
              <td>
                <a href={viewerHref(`${prefix}${name}/`)}>{name}/</a>
              </td>
              <td />
              <td />
            </tr>
          ))}
          {files.map(([name, file]) => {
            const hdf5 = file?.type === HDF5_TYPE;
            const href = hdf5
              ? viewerHref(`${prefix}${name}`)
              : `${BASE}/download/${encodeVpath(`${prefix}${name}`)}`;
            return (
              <tr
                key={`f:${name}`}
                className={hdf5 ? 'hs-file hs-hdf5' : 'hs-file'}
                data-name={name}
                data-size={String(file?.size ?? '')}
              >
                <td>
                  <a href={href}>{name}</a>
                </td>
                <td title={`${file?.size ?? ''} bytes`}>{formatSize(file?.size)}</td>
                <td>{formatTime(file?.last_modified)}</td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {dirs.length === 0 && files.length === 0 ? <p>This directory is empty.</p> : null}
      <p className="hs-total">
        {files.length} files, {dirs.length} directories, {formatSize(listing.size)} in all
      </p>
    </main>
  );
}

function FileView({ vpath }) {
  const initialPath = new URLSearchParams(window.location.search).get('path') ?? undefined;
  const url = `${window.location.origin}${BASE}/h5grove`;
  return (
    <div className="hs-app">
      <H5GroveProvider url={url} filepath={vpath}>
        <App initialPath={initialPath} />
      </H5GroveProvider>
    </div>
  );
}

function Page() {
  const vpath = pageVpath();
  const [state, setState] = useState({ kind: 'loading' });
  useEffect(() => {
    let live = true;
    const target = vpath.replace(/\/+$/, '');
    fetchListing(target)
      .then((value) => {
        if (!live) return;
        if (value?.type === 'directory') {
          if (target !== '' && !vpath.endsWith('/')) {
            window.history.replaceState(null, '', viewerHref(`${target}/`));
          }
          setState({ kind: 'directory', dir: target, listing: value });
        } else {
          setState({ kind: 'file', file: target, info: value });
        }
      })
      .catch((error) => live && setState({ kind: 'error', message: String(error.message ?? error) }));
    return () => {
      live = false;
    };
  }, [vpath]);

  if (state.kind === 'file' && state.info?.type === HDF5_TYPE) {
    document.title = `${state.file} - hdfstream viewer`;
    return (
      <div className="hs-page hs-page-file">
        <Header vpath={state.file} />
        <FileView vpath={state.file} />
      </div>
    );
  }
  let body;
  if (state.kind === 'loading') {
    body = <p className="hs-loading">Loading…</p>;
  } else if (state.kind === 'error') {
    body = <p className="hs-error">{state.message}</p>;
  } else if (state.kind === 'directory') {
    document.title = `/${state.dir} - hdfstream viewer`;
    body = <Listing dir={state.dir} listing={state.listing} />;
  } else {
    body = (
      <p className="hs-error">
        Not an HDF5 file ({state.info?.type ?? 'unknown type'}):{' '}
        <a href={`${BASE}/download/${encodeVpath(state.file)}`}>download it</a>.
      </p>
    );
  }
  return (
    <div className="hs-page">
      <Header vpath={state.kind === 'directory' && state.dir !== '' ? `${state.dir}/` : vpath} />
      {body}
    </div>
  );
}

createRoot(document.getElementById('root')).render(
  <StrictMode>
    <Page />
  </StrictMode>,
);
