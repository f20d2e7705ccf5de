use ticks_engine::{Config, Store};
#[test]
fn reopen_after_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(Config::new(dir.path())).expect("open");
        store.close().expect("close");
    }
    let store = Store::open(Config::new(dir.path())).expect("reopen");
    store.close().expect("close");
}
#[test]
fn reopen_after_drop_without_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let _store = Store::open(Config::new(dir.path())).expect("open");
    }
    let store = Store::open(Config::new(dir.path())).expect("reopen");
    store.close().expect("close");
}
