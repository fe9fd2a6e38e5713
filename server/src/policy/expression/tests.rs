use std::time::{Duration, Instant};

use serde_json::{json, Value as Json};

use super::*;
use crate::admission::parse_review;

fn review(op: &str, object: Json, old: Json) -> AdmissionRequest {
    let body = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u1", "operation": op,
            "kind": {"group": "apps", "version": "v1", "kind": "Deployment"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "name": "api", "namespace": "shop",
            "userInfo": {"username": "alice", "groups": ["dev", "system:authenticated"],
                         "extra": {"scopes": ["a"]}},
            "object": object, "oldObject": old, "dryRun": false,
            "options": {"kind": "UpdateOptions", "fieldManager": "kubectl"}
        }
    });
    parse_review(body.to_string().as_bytes()).unwrap()
}

fn deployment(replicas: i64) -> Json {
    json!({"metadata": {"name": "api", "labels": {"app": "api"}},
    "spec": {"replicas": replicas, "template": {"spec": {"containers": [
        {"name": "app", "image": "registry.example.com/api:1.2@sha256:abc",
         "resources": {"limits": {"memory": "512Mi", "cpu": "500m"}}},
        {"name": "sidecar", "image": "nginx"}
    ]}}}})
}

fn eval_on(request: &AdmissionRequest, source: &str) -> Result<bool, String> {
    let inputs = Inputs::new(
        request,
        Some(json!({"metadata": {"name": "shop", "labels": {"env": "prod"}}})),
    );
    let activation = Activation::new(request, &inputs)?;
    CelExpression::compile(source)?.eval_bool(&activation)
}

fn eval(source: &str) -> Result<bool, String> {
    eval_on(&review("UPDATE", deployment(1), deployment(3)), source)
}

fn is_true(source: &str) {
    assert_eq!(eval(source), Ok(true), "{source}");
}

#[test]
fn compile_errors_name_the_position() {
    let err = CelExpression::compile("object.spec.replicas = 1").unwrap_err();
    assert!(err.starts_with("at 1:22: "), "{err}");
    let err =
        CelExpression::compile("object.spec.replicas == 1 &&\n  (oldObject.spec").unwrap_err();
    assert!(err.starts_with("at 2:"), "{err}");
    let err = CelExpression::compile("objet.spec.replicas > 1").unwrap_err();
    assert!(err.contains("undeclared reference to `objet`"), "{err}");
    assert!(CelExpression::compile("  ").is_err());
    // Comprehension variables are in scope only inside their comprehension.
    assert!(
        CelExpression::compile("object.spec.template.spec.containers.all(c, c.name != '')").is_ok()
    );
    assert!(CelExpression::compile("object.items.all(c, true) && c == 1").is_err());
}

#[test]
fn refuses_oversized_and_deeply_nested_expressions() {
    let long = format!("'{}' == ''", "a".repeat(MAX_SOURCE_LEN));
    assert!(CelExpression::compile(&long)
        .unwrap_err()
        .contains("bytes long"));
    let nested = "object.a.all(a, a.b.all(b, b.c.all(c, c.d.all(d, true))))";
    assert!(CelExpression::compile(nested)
        .unwrap_err()
        .contains("nest more than"));
    let three = "object.a.all(a, a.b.all(b, b.c.all(c, true)))";
    assert!(CelExpression::compile(three).is_ok());
    let many = vec!["1"; MAX_NODES].join(",");
    assert!(CelExpression::compile(&format!("[{many}].size() > 0"))
        .unwrap_err()
        .contains("nodes"));
    // A flat chain nests one level per operator: refused without overflowing any stack.
    let chain = vec!["1"; 3000].join("+");
    assert!(CelExpression::compile(&format!("{chain} > 0"))
        .unwrap_err()
        .contains("levels deep"));
    let parens = format!("{}1{}", "(".repeat(4000), ")".repeat(4000));
    assert!(CelExpression::compile(&format!("{parens} > 0")).is_err());
    // The deepest accepted expression evaluates on an ordinary 2 MiB thread stack.
    let deep = vec!["1"; MAX_DEPTH - 2].join("+");
    let deep = CelExpression::compile(&format!("{deep} > 0")).unwrap();
    let request = review("UPDATE", deployment(1), deployment(3));
    let inputs = Inputs::new(&request, None);
    let activation = Activation::new(&request, &inputs).unwrap();
    assert_eq!(deep.eval_bool(&activation), Ok(true));
}

#[test]
fn variables_follow_validating_admission_policy() {
    is_true("object.spec.replicas < oldObject.spec.replicas");
    is_true(
        "request.operation == 'UPDATE' && request.name == 'api' && request.namespace == 'shop'",
    );
    is_true("request.kind.kind == 'Deployment' && request.resource.resource == 'deployments'");
    is_true("request.subResource == '' && request.uid == 'u1' && !request.dryRun");
    is_true("request.userInfo.username == 'alice' && 'dev' in request.userInfo.groups");
    is_true("request.userInfo.extra.scopes == ['a']");
    is_true("request.options.fieldManager == 'kubectl'");
    is_true("namespaceObject.metadata.labels.env == 'prod'");
    is_true("namespaceObject.metadata.name == 'shop'");
}

#[test]
fn null_objects_where_kubernetes_has_them() {
    let create = review("CREATE", deployment(1), Json::Null);
    assert_eq!(eval_on(&create, "oldObject == null"), Ok(true));
    assert_eq!(eval_on(&create, "object.spec.replicas == 1"), Ok(true));
    assert!(eval_on(&create, "oldObject.spec.replicas > 0").is_err());
    let delete = review("DELETE", Json::Null, deployment(2));
    assert_eq!(
        eval_on(&delete, "object == null && oldObject.spec.replicas == 2"),
        Ok(true)
    );
    // Cluster-scoped: no Namespace object.
    let inputs = Inputs::new(&delete, None);
    let activation = Activation::new(&delete, &inputs).unwrap();
    assert_eq!(
        CelExpression::compile("namespaceObject == null")
            .unwrap()
            .eval_bool(&activation),
        Ok(true)
    );
}

#[test]
fn lists_strings_and_macros() {
    is_true("size(object.spec.template.spec.containers) == 2");
    is_true("object.spec.template.spec.containers.exists(c, c.name == 'sidecar')");
    is_true("object.spec.template.spec.containers.all(c, c.image != '')");
    is_true("object.spec.template.spec.containers.map(c, c.name) == ['app', 'sidecar']");
    is_true(
        "object.spec.template.spec.containers.filter(c, c.image.contains('@sha256:')).size() == 1",
    );
    is_true("object.spec.template.spec.containers.exists_one(c, c.name.startsWith('side'))");
    is_true("'nginx'.endsWith('inx') && 'registry.example.com/x'.matches('^registry\\\\.example\\\\.com/')");
    is_true("'ABC'.lowerAscii() == 'abc' && 'abc'.upperAscii() == 'ABC'");
    is_true("'a,b'.split(',') == ['a', 'b'] && ['a', 'b'].join('-') == 'a-b'");
    is_true("'  x '.trim() == 'x' && 'aXa'.replace('X', 'y') == 'aya' && 'abc'.indexOf('c') == 2");
    is_true("'%s has %d'.format(['api', 2]) == 'api has 2'");
    is_true("has(object.spec.replicas) && !has(object.spec.paused)");
    is_true("'app' in object.metadata.labels");
}

#[test]
fn optionals() {
    is_true("object.?spec.?paused.orValue(false) == false");
    is_true("object.spec.?replicas.hasValue()");
    is_true("optional.of(1).value() == 1");
}

#[test]
fn urls() {
    is_true("url('https://example.com:8443/a/b?x=1&x=2').getScheme() == 'https'");
    is_true("url('https://example.com:8443/a/b').getHost() == 'example.com:8443'");
    is_true("url('https://example.com:8443/a/b').getHostname() == 'example.com'");
    is_true("url('https://example.com:8443/a/b').getPort() == '8443'");
    is_true("url('https://example.com/a/b').getEscapedPath() == '/a/b'");
    is_true("url('https://example.com/?x=1&x=2').getQuery()['x'] == ['1', '2']");
    is_true("url('/healthz').getHost() == '' && url('/healthz').getEscapedPath() == '/healthz'");
    is_true("isURL('https://a.example') && !isURL('not a url')");
    assert!(eval("url('::nope').getHost() == ''").is_err());
}

#[test]
fn quantities() {
    is_true("quantity('512Mi').compareTo(quantity('1Gi')) == -1");
    is_true("quantity('1Gi').isGreaterThan(quantity('1G'))");
    is_true("quantity('500m').isLessThan(quantity('1'))");
    is_true("quantity('1k').asInteger() == 1000 && quantity('2Ki').asInteger() == 2048");
    is_true("quantity('1Mi').asInteger() == 1048576 && quantity('1M').asInteger() == 1000000");
    is_true("quantity('1Ti').asInteger() == 1099511627776");
    is_true("quantity('1.5Gi').asInteger() == 1610612736");
    is_true("quantity('1e3').asInteger() == 1000 && quantity('-2').sign() == -1");
    is_true("quantity('1000m') == quantity('1') && quantity('1').add(quantity('500m')) == quantity('1500m')");
    is_true("quantity('250m').asApproximateFloat() == 0.25 && !quantity('250m').isInteger()");
    is_true("isQuantity('2Gi') && !isQuantity('2 GB')");
    is_true(
        "quantity(object.spec.template.spec.containers[0].resources.limits.memory).isLessThan(quantity('1Gi'))",
    );
    assert!(eval("quantity('500m').asInteger() == 0").is_err());
    assert!(eval("quantity('12XB').sign() == 1").is_err());
}

#[test]
fn ips_and_cidrs() {
    is_true("ip('10.0.0.1').family() == 4 && ip('::1').family() == 6");
    is_true("ip('127.0.0.1').isLoopback() && ip('0.0.0.0').isUnspecified()");
    is_true("ip('169.254.1.1').isLinkLocalUnicast() && ip('fe80::1').isLinkLocalUnicast()");
    is_true("ip('224.0.0.5').isLinkLocalMulticast() && ip('8.8.8.8').isGlobalUnicast()");
    is_true("string(ip('10.0.0.1')) == '10.0.0.1' && isIP('10.0.0.1') && !isIP('10.0.0.256')");
    is_true("cidr('10.0.0.0/8').containsIP(ip('10.1.2.3')) && cidr('10.0.0.0/8').containsIP('10.9.9.9')");
    is_true("!cidr('10.0.0.0/8').containsIP('11.0.0.1')");
    is_true("cidr('10.0.0.0/8').containsCIDR('10.1.0.0/16') && !cidr('10.1.0.0/16').containsCIDR('10.0.0.0/8')");
    is_true("cidr('10.1.2.3/8').masked() == cidr('10.0.0.0/8') && cidr('10.1.2.3/8').prefixLength() == 8");
    is_true(
        "cidr('10.1.2.3/8').ip() == ip('10.1.2.3') && string(cidr('10.0.0.0/8')) == '10.0.0.0/8'",
    );
    is_true("isCIDR('fd00::/8') && !isCIDR('10.0.0.0/33')");
    assert!(eval("ip('::ffff:10.0.0.1').family() == 6").is_err());
}

#[test]
fn non_bool_results_are_errors() {
    let err = eval("object.spec.replicas").unwrap_err();
    assert!(err.contains("not bool"), "{err}");
}

#[test]
fn hostile_expressions_are_bounded() {
    // Nested comprehensions over literals: 60^3 iterations would take seconds; the budget stops it.
    let list = format!(
        "[{}]",
        (0..60).map(|i| i.to_string()).collect::<Vec<_>>().join(",")
    );
    let hostile = format!("{list}.all(a, {list}.all(b, {list}.all(c, a + b + c >= 0)))");
    let started = Instant::now();
    let err = eval(&hostile).unwrap_err();
    assert!(err.contains("cost budget exceeded"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // Over a large input: 5000 items squared.
    let items: Vec<Json> = (0..5000).map(|i| json!(i)).collect();
    let big = review("CREATE", json!({"items": items}), Json::Null);
    let started = Instant::now();
    let err = eval_on(
        &big,
        "object.items.all(x, object.items.all(y, x >= 0 || y >= 0))",
    )
    .unwrap_err();
    assert!(err.contains("cost budget exceeded"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // A single pass over the same input is fine.
    assert_eq!(eval_on(&big, "object.items.all(x, x >= 0)"), Ok(true));

    // Exponential string growth is refused before it allocates.
    let ten = "aaaaaaaaaa";
    let grow = format!(
        "'a'{}.size() > 0",
        format!(".replace('a', '{ten}')").repeat(8)
    );
    let err = eval(&grow).unwrap_err();
    assert!(
        err.contains("cost budget exceeded") || err.contains("replace would build"),
        "{err}"
    );
    let wide = format!(
        "'{}'.replace('a', '{}').size() > 0",
        "a".repeat(1000),
        "b".repeat(2000)
    );
    let err = eval(&wide).unwrap_err();
    assert!(err.contains("replace would build"), "{err}");

    // A pattern per item is compiled once; a pattern too large to compile is an error.
    let names: Vec<Json> = (0..3000).map(|i| json!(format!("name-{i}"))).collect();
    let many = review("CREATE", json!({"names": names}), Json::Null);
    let started = Instant::now();
    assert_eq!(
        eval_on(
            &many,
            "object.names.all(n, n.matches('^name-[0-9]+$') && matches(n, '-'))"
        ),
        Ok(true)
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let huge = format!("'x'.matches('{}')", "(a{1000}){1000}");
    assert!(eval(&format!("{huge} && true"))
        .unwrap_err()
        .contains("invalid pattern"));
    let doubling = format!(
        "[{}].map(x, x + x + x + x + x + x + x + x + x + x).size() > 0",
        "'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'"
    );
    assert_eq!(eval(&doubling), Ok(true));
}

#[test]
fn kubernetes_lists_library() {
    is_true("[1, 2, 2, 5].isSorted() && ['a', 'b', 'c'].isSorted() && [].isSorted()");
    is_true("![3, 1].isSorted() && !['b', 'a'].isSorted() && [1.5, 2.5].isSorted()");
    is_true("[1u, 2u].isSorted() && ![2u, 1u].isSorted()");
    is_true("[1, 2, 3].sum() == 6 && [1u, 2u].sum() == 3u && [0.5, 0.25].sum() == 0.75");
    is_true("[].sum() == 0");
    is_true("[3, 1, 2].min() == 1 && [3, 1, 2].max() == 3");
    is_true("['b', 'a', 'c'].min() == 'a' && ['b', 'a', 'c'].max() == 'c'");
    is_true("[2.5, -1.0].min() == -1.0 && [4u, 9u].max() == 9u");
    is_true("[1, 2, 1, 3].indexOf(1) == 0 && [1, 2, 1, 3].lastIndexOf(1) == 2");
    is_true("['a', 'b'].indexOf('c') == -1 && ['a', 'b'].lastIndexOf('z') == -1");
    is_true("[1.5, 2.5].indexOf(2.5) == 1 && [7u, 7u].lastIndexOf(7u) == 1");
    // The strings extension's indexOf is untouched.
    is_true("'abcabc'.indexOf('c') == 2 && 'abcabc'.lastIndexOf('c') == 5");
    // On request data.
    is_true("object.spec.template.spec.containers.map(c, c.name).isSorted()");
    is_true("object.spec.template.spec.containers.map(c, c.name).indexOf('sidecar') == 1");
    is_true("[object.spec.replicas, oldObject.spec.replicas].sum() == 4");
    // Errors, as in Kubernetes.
    assert!(eval("[].min() == 0").unwrap_err().contains("empty list"));
    assert!(eval("[].max() == 0").unwrap_err().contains("empty list"));
    assert!(eval("['a', 'b'].sum() == 'ab'").is_err());
    assert!(eval("[1, 2.0].sum() == 3").is_err());
    assert!(eval("[1, 'a'].isSorted()").is_err());
    assert!(eval("[9223372036854775807, 1].sum() > 0")
        .unwrap_err()
        .contains("overflow"));
}

#[test]
fn cel_go_lists_extension() {
    // slice
    is_true("[1, 2, 3, 4].slice(1, 3) == [2, 3] && [1, 2, 3, 4].slice(2, 4) == [3, 4]");
    is_true("[1, 2].slice(0, 0) == [] && [1, 2].slice(2, 2) == [] && [].slice(0, 0) == []");
    is_true("object.spec.template.spec.containers.slice(1, 2)[0].name == 'sidecar'");
    let err = eval("[1, 2].slice(-1, 1) == []").unwrap_err();
    assert!(err.contains("negative indexes not supported"), "{err}");
    let err = eval("[1, 2].slice(2, 1) == []").unwrap_err();
    assert!(
        err.contains("start index must be less than or equal"),
        "{err}"
    );
    let err = eval("[1, 2].slice(0, 3) == []").unwrap_err();
    assert!(err.contains("list is length 2"), "{err}");
    // flatten: one level by default, `depth` levels when given; maps stay whole.
    is_true("[1, [2, 3], [4]].flatten() == [1, 2, 3, 4]");
    is_true("[1, [2, [3, 4]]].flatten() == [1, 2, [3, 4]]");
    is_true("[1, 2, [], [], [3, 4]].flatten() == [1, 2, 3, 4]");
    is_true("[1, [2, [3, [4]]]].flatten(2) == [1, 2, 3, [4]]");
    is_true("[1, [2, [3, [4]]]].flatten(0) == [1, [2, [3, [4]]]]");
    is_true("[1, [2, [3, [4]]]].flatten(100) == [1, 2, 3, 4]");
    is_true("[{'a': [1]}, [{'b': 2}]].flatten() == [{'a': [1]}, {'b': 2}]");
    is_true("[[object.spec.replicas], [oldObject.spec.replicas]].flatten() == [1, 3]");
    let err = eval("[1, [2]].flatten(-1) == []").unwrap_err();
    assert!(err.contains("level must be non-negative"), "{err}");
    // distinct: first of each equal group, CEL equality across numeric types.
    is_true("[1, 2, 2, 3, 3, 3].distinct() == [1, 2, 3]");
    is_true("['b', 'b', 'c', 'a', 'c'].distinct() == ['b', 'c', 'a']");
    is_true("[1, 'b', 2, 'b'].distinct() == [1, 'b', 2]");
    is_true("[[1], [1], [2]].distinct() == [[1], [2]] && [].distinct() == []");
    is_true("request.userInfo.groups.distinct() == ['dev', 'system:authenticated']");
    // reverse, and the strings extension's reverse is untouched.
    is_true("[5, 3, 1, 2].reverse() == [2, 1, 3, 5] && [].reverse() == []");
    is_true("'abc'.reverse() == 'cba'");
    is_true("object.spec.template.spec.containers.map(c, c.name).reverse() == ['sidecar', 'app']");
    // sort: homogeneous comparable elements only.
    is_true("[3, 2, 1].sort() == [1, 2, 3] && ['b', 'c', 'a'].sort() == ['a', 'b', 'c']");
    is_true("[2u, 1u].sort() == [1u, 2u] && [2.5, -1.0, 0.0].sort() == [-1.0, 0.0, 2.5]");
    is_true("[true, false].sort() == [false, true] && [b'b', b'a'].sort() == [b'a', b'b']");
    is_true("[duration('2s'), duration('1s')].sort() == [duration('1s'), duration('2s')]");
    is_true("[].sort() == [] && [1].sort() == [1]");
    is_true("['sidecar', 'app'].sort() == object.spec.template.spec.containers.map(c, c.name)");
    let err = eval("[1, 'b'].sort() == []").unwrap_err();
    assert!(
        err.contains("list elements must have the same type"),
        "{err}"
    );
    let err = eval("[1, 1u].sort() == []").unwrap_err();
    assert!(
        err.contains("list elements must have the same type"),
        "{err}"
    );
    let err = eval("[[1, 2, 3]].sort() == []").unwrap_err();
    assert!(err.contains("list elements must be comparable"), "{err}");
    let err = eval("[{'a': 1}, {'a': 2}].sort() == []").unwrap_err();
    assert!(err.contains("list elements must be comparable"), "{err}");
    assert!(eval("[1.0, double('NaN'), 0.5].sort() == []").is_err());
    assert!(eval("[double('NaN'), 1.0].sort() == []").is_err());
    // lists.range
    is_true("lists.range(5) == [0, 1, 2, 3, 4] && lists.range(0) == []");
    is_true("lists.range(3).map(i, i * 2) == [0, 2, 4]");
    is_true("lists.range(size(object.spec.template.spec.containers)).all(i, i < 2)");
    let err = eval("lists.range(-1) == []").unwrap_err();
    assert!(err.contains("size must be non-negative, got -1"), "{err}");
    // A variable named `lists` does not exist.
    assert!(CelExpression::compile("lists == 1").is_ok());
    // `list` is a type, not a namespace: `list.range` is refused when the guardrail loads.
    let err = CelExpression::compile("list.range(3) == []").unwrap_err();
    assert!(err.contains("undeclared reference to 'range'"), "{err}");
}

#[test]
fn lists_extension_is_bounded() {
    // A huge range is refused before it allocates anything.
    let started = Instant::now();
    for huge in [
        "lists.range(9223372036854775807).size() > 0",
        "lists.range(2000000).size() > 0",
    ] {
        let err = eval(huge).unwrap_err();
        assert!(err.contains("cost budget exceeded"), "{huge}: {err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // Nesting ranges multiplies their cost: charged, not run.
    let err = eval("lists.range(1000).all(i, lists.range(1000).all(j, i + j >= 0))").unwrap_err();
    assert!(err.contains("cost budget exceeded"), "{err}");
    is_true("lists.range(100000).size() == 100000");

    let items: Vec<Json> = (0..50_000).map(|i| json!(i)).collect();
    let words: Vec<Json> = (0..20_000)
        .map(|i| json!(format!("w{:06}", 19_999 - i)))
        .collect();
    let big = review(
        "CREATE",
        json!({"items": items, "words": words}),
        Json::Null,
    );
    // One pass over a large list is affordable...
    is_true_on(&big, "object.items.reverse()[0] == 49999");
    is_true_on(&big, "object.items.slice(49990, 50000).size() == 10");
    is_true_on(&big, "object.words.sort()[0] == 'w000000'");
    is_true_on(
        &big,
        "[object.items, object.items].flatten().size() == 100000",
    );
    is_true_on(&big, "object.items.slice(0, 500).distinct().size() == 500");
    // ...repeating it, or a quadratic distinct over it, runs out.
    let started = Instant::now();
    for hostile in [
        "object.items.distinct().size() > 0",
        "object.items.all(x, object.items.reverse().size() > 0)",
        "object.items.all(x, object.items.slice(0, 50000).size() > 0)",
        "object.words.all(w, object.words.sort().size() > 0)",
        "object.items.all(x, [object.items].flatten().size() > 0)",
        "object.items.sort().size() > 0 && object.items.sort().size() > 0",
        "object.items.all(x, object.items.sortBy(y, -y).size() > 0)",
    ] {
        let err = eval_on(&big, hostile).unwrap_err();
        assert!(err.contains("cost budget exceeded"), "{hostile}: {err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A list or map literal holding the request's JSON copies a view of it, one pointer: cheap
    // however large the list (the literals of CEL-built values are charged for their deep copy).
    for cheap in [
        "object.items.all(x, [object.items].size() > 0)",
        "object.items.all(x, {'k': object.items}.size() > 0)",
    ] {
        assert_eq!(eval_on(&big, cheap), Ok(true), "{cheap}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A copy of the request's JSON is a view (one pointer), so a short list of one large object
    // costs one unit per copy; a CEL-built value still pays for everything its deep copy holds.
    let large: Vec<Json> = (0..400_000).map(|i| json!(i)).collect();
    let one = review("CREATE", json!({"one": [{"values": large}]}), Json::Null);
    is_true_on(&one, "[1, 2, 3].all(x, object.one.reverse().size() == 1)");
    let err = eval_on(
        &one,
        "[1, 2, 3].all(x, [object.one[0].values.map(v, v)].reverse().size() == 1)",
    )
    .unwrap_err();
    assert!(err.contains("cost budget exceeded"), "{err}");
}

#[test]
fn kubernetes_regex_library() {
    is_true("'abc 123'.find('[0-9]+') == '123' && 'abc'.find('[0-9]+') == ''");
    is_true("'123 abc 456'.findAll('[0-9]+') == ['123', '456']");
    is_true("'123 abc 456'.findAll('[0-9]+', 1) == ['123']");
    is_true(
        "'123 abc 456'.findAll('[0-9]+', 0) == [] && '123 456'.findAll('[0-9]+', -1).size() == 2",
    );
    is_true("'abc'.findAll('[0-9]+') == []");
    is_true(
        "object.spec.template.spec.containers[0].image.find('sha256:[a-f0-9]+') == 'sha256:abc'",
    );
    assert!(eval("'x'.find('(') == ''")
        .unwrap_err()
        .contains("invalid pattern"));
    assert!(eval("'x'.findAll('[') == []")
        .unwrap_err()
        .contains("invalid pattern"));
    let huge = "(a{1000}){1000}";
    assert!(eval(&format!("'x'.findAll('{huge}') == []"))
        .unwrap_err()
        .contains("invalid pattern"));
}

#[test]
fn kubernetes_sets_library() {
    is_true(
        "sets.contains([1, 2, 3], [1, 3]) && sets.contains([1], []) && !sets.contains([1, 2], [4])",
    );
    is_true("sets.equivalent([1, 2, 2], [2, 1]) && !sets.equivalent([1, 2], [1, 3])");
    is_true("sets.intersects(['a', 'b'], ['b', 'c']) && !sets.intersects(['a'], ['c']) && !sets.intersects([], [])");
    is_true("sets.contains(request.userInfo.groups, ['dev'])");
    is_true(
        "sets.intersects(object.spec.template.spec.containers.map(c, c.name), ['sidecar', 'x'])",
    );
}

#[test]
fn list_regex_and_set_functions_are_bounded() {
    // One pass over a large list is affordable...
    let items: Vec<Json> = (0..50_000).map(|i| json!(i)).collect();
    let words: Vec<Json> = (0..50_000).map(|i| json!(format!("w{i:06}"))).collect();
    let big = review(
        "CREATE",
        json!({"items": items, "words": words}),
        Json::Null,
    );
    is_true_on(
        &big,
        "object.items.isSorted() && object.items.max() == 49999",
    );
    is_true_on(
        &big,
        "object.items.sum() == 1249975000 && object.items.min() == 0",
    );
    is_true_on(
        &big,
        "object.items.lastIndexOf(0) == 0 && object.words.indexOf('w049999') == 49999",
    );
    // ...but each call is charged, so repeating them over the list runs out.
    let started = Instant::now();
    for hostile in [
        "object.items.all(x, object.items.max() >= x)",
        "object.items.all(x, object.items.indexOf(x) >= 0)",
        "object.words.all(w, object.words.isSorted())",
        "object.words.all(w, w.findAll('[0-9]').size() > 0 && object.words.min() <= w)",
        // Pairwise set operations are charged before they run.
        "sets.contains(object.items, object.items)",
        "sets.equivalent(object.words, object.words)",
        "sets.intersects(object.items, [-1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19, -20])",
    ] {
        let err = eval_on(&big, hostile).unwrap_err();
        assert!(err.contains("cost budget exceeded"), "{hostile}: {err}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // findAll charges for every match it builds, beyond the pass over the text: 400 KB of
    // matches fit the budget, 400 K one-byte matches do not.
    let text = review("CREATE", json!({"text": "a".repeat(400_000)}), Json::Null);
    is_true_on(&text, "object.text.find('a+').size() == 400000");
    is_true_on(&text, "object.text.findAll('a+').size() == 1");
    is_true_on(&text, "object.text.findAll('a', 10).size() == 10");
    let err = eval_on(&text, "object.text.findAll('a').size() > 0").unwrap_err();
    assert!(err.contains("cost budget exceeded"), "{err}");
}

fn is_true_on(request: &AdmissionRequest, source: &str) {
    assert_eq!(eval_on(request, source), Ok(true), "{source}");
}

#[test]
fn views_of_the_request_json_behave_as_cel_lists_and_maps() {
    // The objects are views (see `json`): they must equal, index, iterate and concatenate like the
    // lists and maps an expression builds, in either order.
    for source in [
        "object.metadata.labels == {'app': 'api'}",
        "{'app': 'api'} == object.metadata.labels",
        "object.metadata.labels != {'app': 'web'}",
        "[object.metadata.labels] == [{'app': 'api'}]",
        "[{'app': 'api'}] == [object.metadata.labels]",
        "object.spec.template.spec.containers.map(c, c.name) == ['app', 'sidecar']",
        "['app', 'sidecar'] == object.spec.template.spec.containers.map(c, c.name)",
        "object.spec.template.spec.containers[1] == {'name': 'sidecar', 'image': 'nginx'}",
        "object.spec.template == oldObject.spec.template",
        "object.spec != oldObject.spec",
        "{'name': 'sidecar', 'image': 'nginx'} in object.spec.template.spec.containers",
        "'app' in object.metadata.labels && !('web' in object.metadata.labels)",
        "object.metadata.labels in [{'app': 'web'}, {'app': 'api'}]",
        "!(object.metadata.labels in [{'app': 'web'}])",
        "object.spec.template.spec.containers.map(c, c.name) in [['app', 'sidecar']]",
        "size(object.spec.template.spec.containers + [1]) == 3",
        "size([1] + object.spec.template.spec.containers) == 3",
        "object.spec.template.spec.containers[1u].name == 'sidecar'",
        "object.spec.template.spec.containers[1.0].name == 'sidecar'",
        "has(object.spec.replicas) && !has(object.spec.paused)",
        "object.spec.?paused.orValue(false) == false",
        "object.spec.template.spec.containers.exists_one(c, c.image == 'nginx')",
        "object.metadata.labels.all(k, k == 'app')",
        "sets.contains(object.spec.template.spec.containers, [{'name': 'sidecar', 'image': 'nginx'}])",
        "object.spec.template.spec.containers.map(c, c.name).sort() == ['app', 'sidecar']",
        "object.spec.template.spec.containers.indexOf({'name': 'sidecar', 'image': 'nginx'}) == 1",
        "[object.spec.template.spec.containers, [object.metadata]].flatten().size() == 3",
        "object.spec.template.spec.containers.reverse()[0].name == 'sidecar'",
        "object.spec.template.spec.containers.sortBy(c, c.image)[0].name == 'sidecar'",
        "object.spec.template.spec.containers.sortBy(c, c.name).map(c, c.name) == ['app', 'sidecar']",
        "object.spec.template.spec.containers.distinct().size() == 2",
        "object.spec.template.spec.containers.slice(1, 2)[0].image == 'nginx'",
        "type(object.metadata) == map && type(object.spec.template.spec.containers) == list",
    ] {
        is_true(source);
    }
    let err = eval("object.spec.template.spec.containers[2].name == 'x'").unwrap_err();
    assert!(
        err.contains("out of bounds") || err.contains("Index"),
        "{err}"
    );
    let err = eval("object.spec.nothing == 1").unwrap_err();
    assert!(err.contains("nothing"), "{err}");
}
