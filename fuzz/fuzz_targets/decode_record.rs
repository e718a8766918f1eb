//! Any bytes into the decoder: never a panic; every input ends as events, dead letters or skips.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trailwatch::decode::{DeadLetter, Decoder, Position, Visit};
use trailwatch::event::Event;

struct Count(usize);

impl Visit for Count {
    fn event(&mut self, _ev: Event<'_>, _pos: &Position) {
        self.0 += 1;
    }
    fn dead_letter(&mut self, _dead: DeadLetter) {
        self.0 += 1;
    }
}

fuzz_target!(|data: &[u8]| {
    let mut c = Count(0);
    Decoder::default().decode(data, &mut Position::new("fuzz"), &mut c);
});
