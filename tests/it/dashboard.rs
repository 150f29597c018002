//! The dashboard in a real browser: Debian's Chromium, headless, driven over the
//! DevTools protocol (headless_chrome). It opens the dashboard served by the real
//! binary, creates a topic through the form, sees a record produced over REST arrive
//! in the live tail (over the WebSocket API), sees a consumer group's lag change
//! after a commit, resets the group's offsets, and deletes the topic through the
//! confirmation dialog. Screenshots of each page go to
//! `target/tmp/dashboard/` (phone width too).
//!
//! Needs `/usr/bin/chromium` (`apt-get install chromium`; `.ci/run` installs it).

use std::ffi::OsStr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::types::Bounds;
use headless_chrome::{Browser, LaunchOptions, Tab};
use serde_json::{json, Value};

use crate::broker::{create_topic, get, produce_v3, send, TestBroker};

const CHROMIUM: &str = "/usr/bin/chromium";

fn browser() -> Browser {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "the dashboard test needs Chromium at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    );
    let args: Vec<&OsStr> = [
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    .iter()
    .map(OsStr::new)
    .collect();
    let options = LaunchOptions::default_builder()
        .path(Some(PathBuf::from(CHROMIUM)))
        .headless(true)
        .sandbox(false)
        .window_size(Some((1280, 900)))
        .idle_browser_timeout(Duration::from_secs(300))
        .args(args)
        .build()
        .expect("launch options");
    Browser::new(options).expect("Chromium starts")
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("dashboard");
    std::fs::create_dir_all(&dir).expect("the screenshot directory");
    dir
}

fn screenshot(tab: &Tab, name: &str) {
    eval(tab, "window.scrollTo(0, 0)");
    let png = tab
        .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
        .expect("a screenshot");
    let path = shots_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("the screenshot is saved");
    eprintln!("screenshot: {}", path.display());
}

fn eval(tab: &Tab, js: &str) -> Value {
    tab.evaluate(js, false)
        .expect("the script runs")
        .value
        .unwrap_or(Value::Null)
}

/// Waits (up to 30 s) until `js` evaluates to true in the page. A page that is
/// navigating (after a form submit or a logout) cannot run scripts for a moment:
/// that counts as "not yet", and the last such error is named if time runs out.
fn wait_for(tab: &Tab, js: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut last_error = None;
    loop {
        match tab.evaluate(js, false) {
            Ok(result) if result.value == Some(Value::Bool(true)) => return,
            Ok(_) => {}
            Err(e) => last_error = Some(e.to_string()),
        }
        if Instant::now() >= deadline {
            if let Some(e) = last_error {
                eprintln!("{what}: the last script error while waiting: {e}");
            }
            let error = eval(tab, "document.getElementById('error').textContent");
            let body = eval(
                tab,
                "document.getElementById('main').innerText.slice(0, 2000)",
            );
            panic!("{what}: not seen within 30 s (error banner: {error}; page: {body})");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text_of(tab: &Tab, selector: &str) -> String {
    eval(
        tab,
        &format!(
            "(document.querySelector({}) || {{}}).innerText || ''",
            json!(selector)
        ),
    )
    .as_str()
    .unwrap_or("")
    .to_string()
}

fn open(tab: &Tab, hash: &str) {
    eval(tab, &format!("location.hash = {}", json!(hash)));
}

fn type_into(tab: &Tab, selector: &str, text: &str) {
    let el = tab.wait_for_element(selector).expect("the field");
    el.click().expect("focus the field");
    el.type_into(text).expect("typing");
}

/// Every form field on the page has a label a screen reader announces.
fn assert_labelled(tab: &Tab, page: &str) {
    let unlabelled = eval(
        tab,
        "Array.from(document.querySelectorAll('main input, main select, main textarea, dialog input'))\
           .filter(e => !e.closest('label') && !e.getAttribute('aria-label')).map(e => e.outerHTML).join(' ')",
    );
    assert_eq!(
        unlabelled,
        json!(""),
        "unlabelled fields on the {page} page"
    );
}

fn click(tab: &Tab, selector: &str) {
    tab.wait_for_element(selector)
        .expect("the element")
        .click()
        .expect("the click");
}

/// Records a topic holds: high watermark minus log start, summed over partitions.
fn records_in(b: &TestBroker, topic: &str) -> i64 {
    let (_, parts) = get(&b.v3(&format!("/topics/{topic}/partitions")));
    parts["data"]
        .as_array()
        .expect("partitions")
        .iter()
        .map(|p| {
            p["high_watermark"].as_i64().unwrap_or(0) - p["log_start_offset"].as_i64().unwrap_or(0)
        })
        .sum()
}

#[test]
fn an_operator_manages_topics_tails_messages_and_watches_group_lag_in_a_browser() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&b.url("/"))
        .expect("the dashboard")
        .wait_until_navigated()
        .expect("loaded");

    // Overview: the broker, its address and uptime; the counts; rate charts.
    wait_for(
        &tab,
        "!!document.querySelector('#brokers tbody tr td') && document.querySelectorAll('.chart svg path').length >= 4",
        "the overview",
    );
    let brokers = text_of(&tab, "#brokers");
    // Its Kafka listener's address (Confluent's BrokerData), its state, and the
    // metadata quorum it leads alone.
    assert!(
        brokers.contains(&format!("127.0.0.1:{}", b.kafka_port)),
        "{brokers}"
    );
    assert!(brokers.contains("alive"), "{brokers}");
    assert!(
        brokers.contains("yes"),
        "the broker is the controller: {brokers}"
    );
    wait_for(
        &tab,
        "!!document.querySelector('#quorum tbody tr td')",
        "the quorum",
    );
    let quorum = text_of(&tab, "#quorum-summary");
    assert!(quorum.contains("Leader: node 1"), "{quorum}");
    assert!(
        text_of(&tab, "#conn").contains("connected"),
        "connection indicator"
    );
    // Records produced now show in the counts and as a rate on the chart.
    create_topic(&b, "warmup", 3);
    for i in 0..5 {
        produce_v3(
            &b,
            "warmup",
            &[json!({"value": {"type": "STRING", "data": format!("w{i}")}})],
        );
    }
    wait_for(
        &tab,
        "document.querySelector('[data-card=\"Topics\"]') && document.querySelector('[data-card=\"Topics\"]').textContent === '2' \
         && document.querySelector('[data-card=\"Partitions\"]').textContent === '53'",
        "the topic and partition counts (with __consumer_offsets' 50)",
    );
    wait_for(
        &tab,
        "Array.from(document.querySelectorAll('.chart .now')).some(e => e.textContent !== '–' && parseFloat(e.textContent) > 0)",
        "a non-zero rate on the charts",
    );
    // Keyboard: the first Tab reaches the skip link; following it stays on the page.
    tab.press_key("Tab").expect("Tab");
    assert_eq!(
        eval(&tab, "document.activeElement.className"),
        json!("skip")
    );
    tab.press_key("Enter").expect("Enter");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        text_of(&tab, "#main").starts_with("Overview"),
        "the skip link keeps the page"
    );
    assert_labelled(&tab, "overview");
    screenshot(&tab, "overview");

    // Topics: create one through the form.
    click(&tab, "a[data-nav=topics]");
    wait_for(
        &tab,
        "!!document.getElementById('create-topic')",
        "the topics page",
    );
    type_into(&tab, "#new-topic-name", "dash-events");
    eval(
        &tab,
        "document.getElementById('new-topic-partitions').value = '2'",
    );
    type_into(&tab, "#new-topic-configs", "retention.ms=86400000");
    // Submitted from the keyboard: Enter in the name field.
    click(&tab, "#new-topic-name");
    tab.press_key("Enter").expect("Enter");
    wait_for(
        &tab,
        "!!document.querySelector('#topics tr[data-topic=\"dash-events\"]')",
        "the created topic in the list",
    );
    let row = text_of(&tab, "#topics tr[data-topic=\"dash-events\"]");
    assert!(row.contains('2') && row.contains("delete"), "{row}");
    let (status, topic) = get(&b.v3("/topics/dash-events"));
    assert_eq!((status, topic["partitions_count"].clone()), (200, json!(2)));
    let (_, retention) = get(&b.v3("/topics/dash-events/configs/retention.ms"));
    assert_eq!(retention["value"], "86400000");
    // A bad name is refused with the broker's message, shown to the user.
    type_into(&tab, "#new-topic-name", "dash-events");
    click(&tab, "#create-topic-submit");
    wait_for(
        &tab,
        "!document.getElementById('error').hidden && document.getElementById('error').textContent.includes('40901')",
        "the error for an existing topic",
    );
    assert_labelled(&tab, "topics");
    screenshot(&tab, "topics");
    // The search box filters the list.
    type_into(&tab, "#topic-search", "nomatch");
    wait_for(
        &tab,
        "!document.querySelector('#topics tr[data-topic=\"dash-events\"]')",
        "filtering",
    );

    // The topic page: partitions and configs.
    open(&tab, "#/topics/dash-events");
    wait_for(
        &tab,
        "document.querySelectorAll('#partitions tbody tr').length === 2 && !!document.querySelector('#configs')",
        "the topic page",
    );
    assert_labelled(&tab, "topic");
    // Edit a config in its row, then reset it to the default.
    wait_for(
        &tab,
        "!!document.querySelector('tr[data-config=\"retention.ms\"] input')",
        "the retention.ms row",
    );
    eval(
        &tab,
        "document.querySelector('tr[data-config=\"retention.ms\"] input').value = '3600000'",
    );
    click(&tab, "tr[data-config=\"retention.ms\"] button");
    let config = |b: &TestBroker| get(&b.v3("/topics/dash-events/configs/retention.ms")).1;
    let deadline = Instant::now() + Duration::from_secs(10);
    while config(&b)["value"] != "3600000" {
        assert!(
            Instant::now() < deadline,
            "the edit never reached the broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for(
        &tab,
        "document.querySelector('tr[data-config=\"retention.ms\"]').innerText.includes('DYNAMIC')",
        "the edited config's source",
    );
    screenshot(&tab, "topic");
    click(
        &tab,
        "tr[data-config=\"retention.ms\"] button:nth-of-type(2)",
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while config(&b)["value"] != "604800000" {
        assert!(
            Instant::now() < deadline,
            "the reset never reached the broker"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Messages: start the live tail, produce over REST, see it arrive.
    click(&tab, "#open-messages");
    click(&tab, "#tail-start");
    wait_for(
        &tab,
        "document.getElementById('tail-status').textContent.startsWith('live')",
        "the live tail subscribed",
    );
    produce_v3(
        &b,
        "dash-events",
        &[
            json!({"partition_id": 1, "key": {"type": "STRING", "data": "order-7"},
                "value": {"type": "JSON", "data": {"item": "hello-dashboard", "qty": 3}}}),
        ],
    );
    wait_for(
        &tab,
        "document.getElementById('tail').innerText.includes('hello-dashboard')",
        "the produced record in the live tail",
    );
    let tail = text_of(&tab, "#tail");
    assert!(tail.contains("order-7") && tail.contains("json"), "{tail}");
    // Broker data is shown as text, never as markup.
    produce_v3(
        &b,
        "dash-events",
        &[
            json!({"partition_id": 0, "key": {"type": "STRING", "data": "<b id=\"injected\">bold</b>"},
                 "value": {"type": "STRING", "data": "<img src=x onerror=\"window.pwned=1\">"}}),
        ],
    );
    wait_for(
        &tab,
        "document.getElementById('tail').innerText.includes('<b id=\"injected\">bold</b>')",
        "the markup-looking key as text",
    );
    assert_eq!(
        eval(&tab, "!document.getElementById('injected') && !document.querySelector('#tail img') && !window.pwned"),
        json!(true),
        "no markup from the broker's data reached the page"
    );
    // Pause, produce from the form, resume: the record comes after resuming.
    click(&tab, "#tail-pause");
    wait_for(
        &tab,
        "document.getElementById('tail-status').textContent === 'paused'",
        "paused",
    );
    type_into(&tab, "#produce-value", "from-the-form");
    type_into(&tab, "#produce-form input[name=partition]", "0");
    click(&tab, "#produce-submit");
    wait_for(
        &tab,
        "document.getElementById('produce-status').textContent.includes('offset')",
        "the produce answer",
    );
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        !text_of(&tab, "#tail").contains("from-the-form"),
        "nothing arrives while paused"
    );
    click(&tab, "#tail-pause");
    wait_for(
        &tab,
        "document.getElementById('tail').innerText.includes('from-the-form')",
        "the form's record after resuming",
    );
    // JSON from the form: a valid value is produced, an invalid one refused with a
    // message before anything is sent.
    eval(
        &tab,
        "document.querySelector('#produce-form select[name=type]').value = 'JSON'",
    );
    eval(
        &tab,
        "document.getElementById('produce-value').value = '{\"n\": 1}'",
    );
    eval(
        &tab,
        "document.getElementById('produce-status').textContent = ''",
    );
    click(&tab, "#produce-submit");
    wait_for(
        &tab,
        "document.getElementById('produce-status').textContent.includes('offset')",
        "the JSON record produced",
    );
    eval(
        &tab,
        "document.getElementById('produce-value').value = '{bad'",
    );
    click(&tab, "#produce-submit");
    wait_for(
        &tab,
        "document.getElementById('error').textContent.includes('not valid JSON')",
        "the invalid JSON refused",
    );
    // A record the broker refuses in band (HTTP 200, as Confluent's) shows its error.
    eval(
        &tab,
        "document.getElementById('produce-value').value = '{\"n\": 2}'; document.querySelector('#produce-form input[name=partition]').value = '99'",
    );
    click(&tab, "#produce-submit");
    wait_for(
        &tab,
        "document.getElementById('error').textContent.includes('Error 40402')",
        "the in-band refusal shown",
    );
    eval(
        &tab,
        "document.querySelector('#produce-form input[name=partition]').value = '0'",
    );
    // Browse partition 1 from the beginning: the JSON value is pretty-printed.
    eval(
        &tab,
        "document.getElementById('browse-partition').value = '1'",
    );
    click(&tab, "#browse-form button[type=submit]");
    wait_for(
        &tab,
        "document.getElementById('browse').innerText.includes('\"qty\": 3')",
        "the browsed record",
    );
    // A binary value is shown as hex; the filter narrows the rows; browsing can start
    // at an offset.
    produce_v3(
        &b,
        "dash-events",
        &[
            json!({"partition_id": 1, "value": {"type": "BINARY", "data": crate::broker::base64_encode(&[0, 255, 1, 128])}}),
        ],
    );
    click(&tab, "#browse-form button[type=submit]");
    wait_for(
        &tab,
        "document.getElementById('browse').innerText.includes('00 ff 01 80')",
        "the binary value as hex",
    );
    type_into(&tab, "#browse-filter", "hello");
    wait_for(
        &tab,
        "document.querySelectorAll('#browse tbody tr').length === 1",
        "the filtered rows",
    );
    assert_labelled(&tab, "messages");
    screenshot(&tab, "messages");
    eval(&tab, "document.getElementById('browse-filter').value = ''");
    eval(
        &tab,
        "document.getElementById('browse-from').value = 'offset'",
    );
    eval(&tab, "document.getElementById('browse-value').value = '1'");
    click(&tab, "#browse-form button[type=submit]");
    wait_for(
        &tab,
        "document.querySelector('#browse tbody tr') && document.querySelector('#browse tbody tr').dataset.offset === '1' && document.querySelectorAll('#browse tbody tr').length === 1",
        "browsing from offset 1",
    );
    // From a time: one long ago gives every record; one in the future none.
    eval(
        &tab,
        "document.getElementById('browse-from').value = 'timestamp'",
    );
    eval(
        &tab,
        "document.getElementById('browse-value').value = '2000-01-01T00:00'",
    );
    click(&tab, "#browse-form button[type=submit]");
    wait_for(
        &tab,
        "document.querySelectorAll('#browse tbody tr[data-offset]').length === 2",
        "browsing from a time long ago",
    );
    eval(
        &tab,
        "document.getElementById('browse-value').value = '2999-01-01T00:00'",
    );
    click(&tab, "#browse-form button[type=submit]");
    wait_for(
        &tab,
        "document.querySelectorAll('#browse tbody tr[data-offset]').length === 0",
        "browsing from a time to come",
    );

    // A consumer group whose lag changes when it commits.
    let consumers = b.url("/consumers/dash-group");
    let v2 = "application/vnd.kafka.v2+json";
    let (status, created) = send(
        "POST",
        &consumers,
        v2,
        &json!({"name": "c1", "format": "binary", "auto.offset.reset": "earliest", "auto.commit.enable": "false"}).to_string(),
    );
    assert_eq!(status, 200, "{created}");
    let instance = b.url("/consumers/dash-group/instances/c1");
    let (status, _) = send(
        "POST",
        &format!("{instance}/subscription"),
        v2,
        &json!({"topics": ["dash-events"]}).to_string(),
    );
    assert_eq!(status, 204);
    // Commit offset 0 of partition 1 as processed (Confluent's v2 commits the last
    // processed offset; the group stores the next, 1): one record of lag there.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, answer) = send(
            "POST",
            &format!("{instance}/offsets"),
            v2,
            &json!({"offsets": [{"topic": "dash-events", "partition": 1, "offset": 0}]})
                .to_string(),
        );
        if status == 200 || status == 204 {
            break;
        }
        assert!(Instant::now() < deadline, "commit: {status} {answer}");
        let _ = crate::broker::get_accept(
            &format!("{instance}/records?timeout=500"),
            "application/vnd.kafka.binary.v2+json",
        );
    }
    open(&tab, "#/groups");
    wait_for(
        &tab,
        "!!document.querySelector('#groups tr[data-group=\"dash-group\"]') \
         && document.querySelector('#groups tr[data-group=\"dash-group\"]').innerText.includes('STABLE')",
        "the group in the list, with its state",
    );
    // Leaving the messages page closed its live-tail socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, metrics) = get(&b.url("/metrics"));
        if metrics
            .as_str()
            .is_some_and(|m| m.lines().any(|l| l == "troupe_websocket_connections 0"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the tail's WebSocket stayed open"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    screenshot(&tab, "groups");
    open(&tab, "#/groups/dash-group");
    wait_for(
        &tab,
        "document.getElementById('total-lag') && document.getElementById('total-lag').textContent === '1'",
        "a lag of 1 before the commit",
    );
    wait_for(
        &tab,
        "document.getElementById('members').innerText.includes('dash-events-')",
        "the member and its assignment",
    );
    // Per partition: the committed one with its lag, the other assigned with none yet.
    wait_for(
        &tab,
        "!!document.querySelector('#lags tr[data-lag=\"dash-events-1\"]') && !!document.querySelector('#lags tr[data-lag=\"dash-events-0\"]') \
         && document.querySelector('#lags tr[data-lag=\"dash-events-1\"] td:nth-child(5)').textContent === '1'",
        "the lag per partition",
    );
    let (status, _) = send(
        "POST",
        &format!("{instance}/offsets"),
        v2,
        &json!({"offsets": [{"topic": "dash-events", "partition": 1, "offset": 1}]}).to_string(),
    );
    assert!(status == 200 || status == 204, "{status}");
    wait_for(
        &tab,
        "document.getElementById('total-lag').textContent === '0'",
        "the lag after the commit",
    );
    assert_labelled(&tab, "group");
    screenshot(&tab, "group");
    // Resetting offsets needs the group empty: the error is shown, then it works.
    type_into(&tab, "#reset-form input[name=topic]", "dash-events");
    click(&tab, "#reset-form button[type=submit]");
    wait_for(
        &tab,
        "document.getElementById('error').textContent.includes('40906')",
        "the non-empty group error",
    );
    let (status, _) = crate::broker::delete(&instance);
    assert_eq!(status, 204);
    click(&tab, "#reset-form button[type=submit]");
    wait_for(
        &tab,
        &format!(
            "document.getElementById('total-lag').textContent === '{}'",
            records_in(&b, "dash-events")
        ),
        "the lag after resetting to earliest (every record of both partitions)",
    );

    // Phone width: the same pages stay usable.
    tab.set_bounds(Bounds::Normal {
        left: None,
        top: None,
        width: Some(390.0),
        height: Some(844.0),
    })
    .expect("a phone-sized window");
    for (page, ready, shot) in [
        (
            "#/topics",
            "!!document.querySelector('#topics tbody tr')",
            "topics-phone",
        ),
        (
            "#/topics/dash-events/messages",
            "!!document.getElementById('tail-start')",
            "messages-phone",
        ),
        (
            "#/overview",
            "!!document.querySelector('#brokers tbody tr td')",
            "overview-phone",
        ),
    ] {
        open(&tab, page);
        wait_for(&tab, ready, &format!("{page} at phone width"));
        let overflow = eval(
            &tab,
            "document.documentElement.scrollWidth <= window.innerWidth + 1",
        );
        assert_eq!(
            overflow,
            Value::Bool(true),
            "no horizontal scrolling of {page} at phone width"
        );
        screenshot(&tab, shot);
    }
    tab.set_bounds(Bounds::Normal {
        left: None,
        top: None,
        width: Some(1280.0),
        height: Some(900.0),
    })
    .expect("back to desktop size");

    // The list's size and message count, and the topic page's offsets, match the broker.
    let messages = records_in(&b, "dash-events");
    let (_, parts) = get(&b.v3("/topics/dash-events/partitions"));
    let parts = parts["data"].as_array().expect("partitions").clone();
    open(&tab, "#/topics");
    wait_for(
        &tab,
        &format!(
            "!!document.querySelector('#topics tr[data-topic=\"dash-events\"]') \
             && document.querySelector('#topics tr[data-topic=\"dash-events\"] td:nth-child(5)').textContent === '{messages}' \
             && document.querySelector('#topics tr[data-topic=\"dash-events\"] td:nth-child(4)').textContent !== '0 B'"
        ),
        "the topic's message count and size",
    );
    open(&tab, "#/topics/dash-events");
    let end1 = parts[1]["log_end_offset"].as_i64().expect("log end");
    wait_for(
        &tab,
        &format!(
            "!!document.querySelector('#partitions tr[data-partition=\"1\"]') \
             && document.querySelector('#partitions tr[data-partition=\"1\"] td:nth-child(6)').textContent === '{end1}' \
             && document.querySelector('#partitions tr[data-partition=\"1\"] td:nth-child(7)').textContent === '{end1}'"
        ),
        "partition 1's log end and high watermark",
    );
    // Delete the topic through the confirmation dialog: Escape backs out.
    click(&tab, "#delete-topic");
    wait_for(
        &tab,
        "document.getElementById('confirm').open",
        "the confirmation dialog",
    );
    tab.press_key("Escape").expect("Escape");
    wait_for(
        &tab,
        "!document.getElementById('confirm').open",
        "the dialog closed",
    );
    assert_eq!(
        get(&b.v3("/topics/dash-events")).0,
        200,
        "Escape deletes nothing"
    );
    click(&tab, "#delete-topic");
    wait_for(
        &tab,
        "document.getElementById('confirm').open",
        "the confirmation dialog",
    );
    assert_eq!(
        eval(&tab, "document.getElementById('confirm-ok').disabled"),
        Value::Bool(true),
        "delete needs the name typed"
    );
    screenshot(&tab, "delete-confirm");
    type_into(&tab, "#confirm-input", "dash-events");
    click(&tab, "#confirm-ok");
    wait_for(
        &tab,
        "location.hash === '#/topics'",
        "back on the topics page",
    );
    wait_for(
        &tab,
        "!!document.querySelector('#topics') && !document.querySelector('#topics tr[data-topic=\"dash-events\"]')",
        "the topic gone from the list",
    );
    let (status, _) = get(&b.v3("/topics/dash-events"));
    assert_eq!(status, 404);
    // Everything the page loaded came from the broker itself.
    assert_eq!(
        eval(
            &tab,
            "performance.getEntriesByType('resource').every(e => e.name.startsWith(location.origin))"
        ),
        json!(true),
        "no request left the broker's origin"
    );
}

#[test]
fn the_dashboard_survives_a_broker_restart_and_keeps_tailing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let b = TestBroker::start(dir.path());
    create_topic(&b, "survivor", 1);
    let port = b.port;
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.navigate_to(&b.url("/#/topics/survivor/messages"))
        .expect("the dashboard")
        .wait_until_navigated()
        .expect("loaded");
    click(&tab, "#tail-start");
    wait_for(
        &tab,
        "document.getElementById('tail-status').textContent.startsWith('live')",
        "the live tail",
    );
    b.stop();
    wait_for(
        &tab,
        "document.getElementById('tail-status').textContent.includes('reconnecting')",
        "the tail noticing the broker is gone",
    );
    wait_for(
        &tab,
        "document.getElementById('conn').textContent.includes('unreachable')",
        "the page saying the broker is unreachable",
    );
    // The same port again, so the page's origin still points at it.
    let b = TestBroker::start_on(dir.path(), port, &[]);
    wait_for(
        &tab,
        "document.getElementById('tail-status').textContent.startsWith('live')",
        "the tail back after the restart",
    );
    produce_v3(
        &b,
        "survivor",
        &[json!({"value": {"type": "STRING", "data": "after-restart"}})],
    );
    wait_for(
        &tab,
        "document.getElementById('tail').innerText.includes('after-restart')",
        "a record produced after the restart",
    );
    wait_for(
        &tab,
        "document.getElementById('conn').textContent === 'connected' && document.getElementById('error').hidden",
        "connected again, with no error left",
    );
    screenshot(&tab, "after-restart");
}

#[test]
fn a_broker_listening_beyond_loopback_shows_a_warning_on_every_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let exposed = crate::browser::listen_on(dir.path(), "0.0.0.0");
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&format!("http://127.0.0.1:{}/#/topics", exposed.port))
        .expect("the dashboard")
        .wait_until_navigated()
        .expect("loaded");
    wait_for(
        &tab,
        "!document.getElementById('exposed').hidden",
        "the exposure warning",
    );
    let warning = text_of(&tab, "#exposed");
    assert!(warning.contains("no authentication"), "{warning}");
    // The page works as usual under it, and the warning stays across pages.
    wait_for(
        &tab,
        "!!document.querySelector('main h1, main h2')",
        "the topics page",
    );
    open(&tab, "#/overview");
    wait_for(
        &tab,
        "!!document.querySelector('#brokers tbody tr td') && !document.getElementById('exposed').hidden",
        "the overview under the warning",
    );
    screenshot(&tab, "exposed-warning");
}

#[test]
fn an_operator_raises_a_partitions_replication_with_the_reassign_form_of_a_cluster() {
    use crate::cluster::{all_alive, wait_until, TestCluster, QUICK};
    let c = TestCluster::start(QUICK);
    wait_until("every broker alive", Duration::from_secs(20), || {
        all_alive(&c, 1)
    });
    let (status, body) = crate::broker::post_json(
        &c.v3(1, "/topics"),
        &json!({"topic_name": "grow", "replicas_assignments": [{"partition_id": 0, "broker_ids": [1]}]}),
    );
    assert_eq!(status, 201, "{body}");
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.navigate_to(&c.node(1).url("/#/topics/grow"))
        .expect("the dashboard")
        .wait_until_navigated()
        .expect("loaded");
    wait_for(
        &tab,
        "document.getElementById('reassignments').textContent.includes('No reassignment')",
        "the topic page with its reassignment status",
    );
    assert_labelled(&tab, "topic");
    type_into(&tab, "#reassign-form input[name=replicas]", "1,2,3");
    click(&tab, "#reassign-form button");
    wait_for(
        &tab,
        "(() => { const row = document.querySelector('#partitions tr[data-partition=\"0\"]'); \
           return !!row && row.innerText.includes('[1, 2, 3]') && row.cells[3].innerText.split(',').length === 3; })()",
        "three replicas, all in sync",
    );
    screenshot(&tab, "reassigned");
}

/// `authentication.method=BASIC`: the dashboard sends a browser to its login page,
/// refuses a wrong password, logs the right one in with a session cookie the page's
/// script cannot read, works (REST and the WebSocket) on that session, and logs out.
#[test]
fn an_operator_logs_in_to_the_dashboard_and_out_again() {
    use crate::auth::{cluster_id, create_topic_as_admin, secured_broker};
    let dir = tempfile::tempdir().expect("tempdir");
    let b = secured_broker(dir.path());
    let cluster = cluster_id(&b);
    create_topic_as_admin(&b, &cluster, "after-login");
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(30));
    tab.navigate_to(&format!("http://127.0.0.1:{}/#/topics", b.port))
        .expect("the dashboard")
        .wait_until_navigated()
        .expect("loaded");
    wait_for(
        &tab,
        "location.pathname === '/login' && !!document.getElementById('login-form')",
        "the login page",
    );
    let submit = |user: &str, password: &str| submit_login(&tab, user, password);
    submit("admin", "wrong");
    wait_for(
        &tab,
        "!document.getElementById('login-error').hidden",
        "the login error",
    );
    let refused = text_of(&tab, "#login-error");
    assert!(
        refused.contains("invalid user name or password"),
        "{refused}"
    );
    screenshot(&tab, "login-refused");
    submit(crate::auth::ADMIN.0, crate::auth::ADMIN.1);
    wait_for(
        &tab,
        "location.pathname === '/' && document.getElementById('who-user').textContent === 'admin'",
        "the dashboard, logged in",
    );
    assert_eq!(
        eval(&tab, "document.cookie"),
        json!(""),
        "the session cookie is HttpOnly"
    );
    open(&tab, "#/topics");
    wait_for(
        &tab,
        "document.getElementById('main').innerText.includes('after-login')",
        "the topics list on the session",
    );
    let ws_opens = tab
        .evaluate(
            "new Promise(done => { const w = new WebSocket('ws://' + location.host + '/ws'); \
             w.onopen = () => { w.close(); done(true); }; w.onerror = () => done(false); })",
            true,
        )
        .expect("the script runs")
        .value;
    assert_eq!(
        ws_opens,
        Some(json!(true)),
        "the WebSocket opens on the session"
    );
    screenshot(&tab, "logged-in");

    // The Users page: create a user, set its password, delete it.
    open(&tab, "#/users");
    wait_for(
        &tab,
        "!!document.getElementById('create-user')",
        "the users page",
    );
    assert_labelled(&tab, "users");
    type_into(&tab, "#new-user-name", "erin");
    type_into(&tab, "#new-user-password", "erin-pw");
    click(&tab, "#create-user-submit");
    wait_for(
        &tab,
        "!!document.querySelector('[data-user=\"erin\"]') && document.querySelector('[data-user=\"erin\"]').innerText.includes('SCRAM-SHA-512 (4096)')",
        "erin in the list",
    );
    let login = |user: &str, password: &str| {
        ureq::get(&b.url("/v3/clusters"))
            .set(
                "Authorization",
                &format!(
                    "Basic {}",
                    crate::broker::base64_encode(format!("{user}:{password}").as_bytes())
                ),
            )
            .call()
            .map(|r| r.status())
            .unwrap_or_else(|e| match e {
                ureq::Error::Status(s, _) => s,
                other => panic!("{other}"),
            })
    };
    assert_eq!(login("erin", "erin-pw"), 200);
    click(&tab, "[data-user=\"erin\"] button.secondary");
    type_into(&tab, "#password-new", "erin-new");
    click(&tab, "#set-password-submit");
    wait_for(
        &tab,
        "document.getElementById('users-status').textContent.includes('Password of erin set')",
        "the password set",
    );
    assert_eq!(login("erin", "erin-pw"), 401);
    assert_eq!(login("erin", "erin-new"), 200);
    screenshot(&tab, "users");
    click(&tab, "[data-user=\"erin\"] button.danger");
    type_into(&tab, "#confirm-input", "erin");
    click(&tab, "#confirm-ok");
    wait_for(
        &tab,
        "!document.querySelector('[data-user=\"erin\"]')",
        "erin deleted",
    );
    assert_eq!(login("erin", "erin-new"), 401);
    assert!(b.logged("erin-new").is_empty() && b.logged("erin-pw").is_empty());

    click(&tab, "#logout");
    wait_for(
        &tab,
        "location.pathname === '/login'",
        "the login page again",
    );
    let after = tab
        .evaluate("fetch('/v3/clusters').then(r => r.status)", true)
        .expect("the script runs")
        .value;
    assert_eq!(after, Some(json!(401)), "the session ended");
    assert!(
        b.logged(crate::auth::ADMIN.1).is_empty(),
        "the password was logged"
    );
}

/// Fills the login form with `user` and `password`, and submits it.
fn submit_login(tab: &Tab, user: &str, password: &str) {
    eval(
        tab,
        &format!(
            "document.getElementById('login-user').value = {}; \
             document.getElementById('login-password').value = {}",
            json!(user),
            json!(password)
        ),
    );
    click(tab, "#login-submit");
}

/// Logs in on the dashboard's login page as `user`, and waits for the dashboard.
fn log_in(tab: &Tab, port: u16, user: &str, password: &str) {
    tab.navigate_to(&format!("http://127.0.0.1:{port}/login"))
        .expect("the login page")
        .wait_until_navigated()
        .expect("loaded");
    wait_for(
        tab,
        "!!document.getElementById('login-form')",
        "the login form",
    );
    submit_login(tab, user, password);
    wait_for(
        tab,
        &format!(
            "location.pathname === '/' && document.getElementById('who-user').textContent === {}",
            json!(user)
        ),
        "the dashboard, logged in",
    );
}

#[test]
fn an_operator_grants_an_acl_on_the_dashboard_and_that_user_sees_only_their_topics() {
    use crate::auth::{call, cluster_id, create_topic_as_admin, create_user, secured_broker_with};
    let dir = tempfile::tempdir().expect("tempdir");
    let b = secured_broker_with(
        dir.path(),
        &["authorizer.class.name=acl", "super.users=User:admin"],
    );
    let cluster = cluster_id(&b);
    create_user(&b, &cluster, "alice", "alice-pw");
    for topic in ["team-a-orders", "team-a-billing", "team-b-secret"] {
        create_topic_as_admin(&b, &cluster, topic);
    }
    let browser = browser();
    let tab = browser.new_tab().expect("a tab");
    tab.set_default_timeout(Duration::from_secs(30));
    let (admin, password) = crate::auth::ADMIN;
    log_in(&tab, b.port, admin, password);

    // The operator adds alice's ACL through the form.
    open(&tab, "#/acls");
    wait_for(
        &tab,
        "!!document.getElementById('create-acl')",
        "the ACLs page",
    );
    wait_for(
        &tab,
        "document.getElementById('acls-enforced').textContent.includes('authorizer is on')",
        "the authorizer's state",
    );
    assert_labelled(&tab, "acls");
    type_into(&tab, "#acl-principal", "User:alice");
    type_into(&tab, "#acl-resource", "team-a-");
    eval(
        &tab,
        "const f = document.getElementById('create-acl'); \
         f.elements.operation.value = 'READ'; f.elements.pattern_type.value = 'PREFIXED'",
    );
    click(&tab, "#create-acl-submit");
    let row =
        "document.querySelector('[data-acl=\"TOPIC|team-a-|PREFIXED|User:alice|*|READ|ALLOW\"]')";
    wait_for(&tab, &format!("!!{row}"), "alice's ACL in the list");
    screenshot(&tab, "acls");

    // alice logs in and sees only the topics her ACL covers; the ACL page is not hers.
    click(&tab, "#logout");
    wait_for(&tab, "location.pathname === '/login'", "the login page");
    log_in(&tab, b.port, "alice", "alice-pw");
    open(&tab, "#/topics");
    wait_for(
        &tab,
        "document.getElementById('main').innerText.includes('team-a-orders') \
         && document.getElementById('main').innerText.includes('team-a-billing')",
        "alice's topics",
    );
    let shown = text_of(&tab, "#main");
    assert!(!shown.contains("team-b-secret"), "{shown}");
    screenshot(&tab, "acl-limited-topics");
    open(&tab, "#/acls");
    wait_for(
        &tab,
        "document.getElementById('error').textContent.includes('40301')",
        "the refusal of the ACL list",
    );

    // The operator deletes the ACL on the dashboard: alice sees nothing any more.
    click(&tab, "#logout");
    wait_for(&tab, "location.pathname === '/login'", "the login page");
    log_in(&tab, b.port, admin, password);
    open(&tab, "#/acls");
    wait_for(&tab, &format!("!!{row}"), "alice's ACL in the list");
    click(
        &tab,
        "[data-acl=\"TOPIC|team-a-|PREFIXED|User:alice|*|READ|ALLOW\"] button.danger",
    );
    type_into(&tab, "#confirm-input", "User:alice");
    click(&tab, "#confirm-ok");
    wait_for(&tab, &format!("!{row}"), "the ACL deleted");
    let (status, body, _) = call(
        "GET",
        &b.url(&format!("/v3/clusters/{cluster}/topics")),
        Some(("alice", "alice-pw")),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(body["data"], json!([]), "{body}");
}
