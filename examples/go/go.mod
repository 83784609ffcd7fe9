module eplb-serving-loop

go 1.19

require eplb v0.0.0

replace eplb => ../../bindings/go
