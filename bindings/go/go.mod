module eplb

go 1.19
