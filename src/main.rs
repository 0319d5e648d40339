//! `procnet` command line.

fn main() {
    let mut collector = procnet::collect::Collector::new().expect("collector");
    let snap = collector.sample().expect("sample");
    println!("{}", serde_json::to_string_pretty(&snap).unwrap());
}
